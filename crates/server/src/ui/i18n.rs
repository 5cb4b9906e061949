//! The web UI's two languages, Simplified Chinese and English: the message catalog, the choice
//! of language for a request, and the route that remembers a choice.
//!
//! The catalog is a struct with one field per message, and each message is written once with
//! both of its texts side by side (the `catalog!` macro below): a message cannot exist in one language only
//! (the build fails), and a template that names a message that does not exist does not compile
//! (askama checks field names). Texts are plain text: askama escapes them like any value.
//!
//! The language of a request ([`Lang::from_headers`], also an extractor): the `toll_lang`
//! cookie (a choice the user made with the switcher) wins over the browser's `Accept-Language`
//! (the user's system default), and English is the fall-back for everyone else.

use std::convert::Infallible;

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// The cookie that remembers the language a user picked.
pub const LANG_COOKIE: &str = "toll_lang";

/// How long the choice is remembered: a year, so that it outlives sessions and sign-outs.
pub const LANG_COOKIE_MAX_AGE_SECS: u64 = 365 * 24 * 3600;

/// Where the switcher sends the user back to when the `next` it was given is missing or unsafe.
pub const DEFAULT_NEXT: &str = "/ui/";

/// A `next` longer than this is not a link of ours; refusing it keeps headers small.
const MAX_NEXT_LEN: usize = 2048;

/// A language of the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// Simplified Chinese, as used in mainland China: the operators Toll is first built for.
    ZhCn,
    /// English: the fall-back, and the language of most operators' staff elsewhere.
    #[default]
    En,
}

impl Lang {
    /// Every language, in the order the switcher shows them.
    pub const ALL: [Lang; 2] = [Lang::ZhCn, Lang::En];

    /// The BCP 47 tag: `<html lang>`, the cookie's value and the switcher's URL.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The language of a tag as [`Lang::tag`] writes it (case-insensitive, since tags are).
    pub fn from_tag(tag: &str) -> Option<Lang> {
        Lang::ALL
            .into_iter()
            .find(|l| l.tag().eq_ignore_ascii_case(tag))
    }

    /// The language's name in the language itself. Deliberately not translated: a user who
    /// cannot read the current language must still find their own in the switcher.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::ZhCn => "中文",
            Lang::En => "English",
        }
    }

    /// The name of ECharts' built-in locale (its `echarts.min.js` registers `ZH` and `EN`):
    /// axis labels, tool-box titles and number formats of the charts.
    pub fn echarts_locale(self) -> &'static str {
        match self {
            Lang::ZhCn => "ZH",
            Lang::En => "EN",
        }
    }

    /// The catalog of this language.
    pub fn messages(self) -> &'static Messages {
        match self {
            Lang::ZhCn => &ZH_CN,
            Lang::En => &EN,
        }
    }

    /// The language of a request: the `toll_lang` cookie, else `Accept-Language`, else English.
    /// A cookie with an unknown value is ignored rather than an error: it may come from a
    /// later version that has more languages.
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        let from_cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.split_once('='))
            .filter(|(name, _)| name.trim() == LANG_COOKIE)
            .find_map(|(_, value)| Lang::from_tag(value.trim().trim_matches('"')));
        from_cookie
            .or_else(|| {
                headers
                    .get_all(header::ACCEPT_LANGUAGE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find_map(Lang::from_accept_language)
            })
            .unwrap_or_default()
    }

    /// The language an `Accept-Language` value prefers most among ours: the highest `q` wins,
    /// the first listed on a tie; any `zh` (`zh`, `zh-CN`, `zh-Hans`, also `zh-TW`: Simplified is
    /// the Chinese we have) is Chinese, any `en` English. `None` when it names neither.
    pub fn from_accept_language(value: &str) -> Option<Lang> {
        let mut best: Option<(u16, Lang)> = None;
        for item in value.split(',') {
            let mut parts = item.split(';');
            let range = parts.next().unwrap_or("").trim();
            let mut q = Some(1000);
            for param in parts {
                if let Some((k, v)) = param.split_once('=')
                    && k.trim().eq_ignore_ascii_case("q")
                {
                    q = parse_q(v.trim());
                }
            }
            // An invalid weight drops the item; q=0 means "not acceptable".
            let Some(q) = q.filter(|q| *q > 0) else {
                continue;
            };
            let primary = range.split('-').next().unwrap_or("");
            let lang = if primary.eq_ignore_ascii_case("zh") {
                Lang::ZhCn
            } else if primary.eq_ignore_ascii_case("en") {
                Lang::En
            } else {
                continue;
            };
            if best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, lang)| lang)
    }
}

/// A weight (`0`, `0.8`, `1.000`) in thousandths, as RFC 9110 writes it; `None` if malformed.
/// Integers, not floats: weights have three decimals at most, and comparing them is all we do.
fn parse_q(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The language of the request, never failing ([`Lang::from_headers`]).
impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Lang, Infallible> {
        Ok(Lang::from_headers(&parts.headers))
    }
}

/// The query of [`set_lang`].
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    /// Where to go back to: a path of this site (see [`safe_next`]).
    pub next: Option<String>,
}

/// `GET /ui/lang/{lang}?next=/ui/...`: remembers the language in a cookie and sends the user
/// back to the page they were on. A GET, not a form post, so that the switcher is a plain link
/// that works without JavaScript; it changes nothing but a preference, so it needs no CSRF
/// defence beyond what the open-redirect check gives.
pub async fn set_lang(Path(tag): Path<String>, Query(query): Query<NextQuery>) -> Response {
    let Some(lang) = Lang::from_tag(&tag) else {
        return (StatusCode::NOT_FOUND, "unknown language").into_response();
    };
    let next = query
        .next
        .as_deref()
        .and_then(safe_next)
        .unwrap_or(DEFAULT_NEXT);
    // HttpOnly: no script needs it. Not Secure: it is no secret, and a Secure cookie would be
    // dropped on a plain-HTTP install, where the choice would then never stick.
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/; Max-Age={LANG_COOKIE_MAX_AGE_SECS}; SameSite=Lax; HttpOnly",
        lang.tag()
    );
    let mut headers = HeaderMap::new();
    // `safe_next` let through visible ASCII only, so both are valid header values.
    if let (Ok(location), Ok(cookie)) =
        (HeaderValue::from_str(next), HeaderValue::from_str(&cookie))
    {
        headers.insert(header::LOCATION, location);
        headers.insert(header::SET_COOKIE, cookie);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    (StatusCode::SEE_OTHER, headers).into_response()
}

/// `next` if it is a path of this site, `None` otherwise: the switcher must not become an open
/// redirect (a link to `/ui/lang/en?next=https://evil.example` that lands on a phishing page
/// after passing through ours). Only an absolute path is accepted — one `/` then no second `/`
/// or `\` (`//evil` and `/\evil` are read by browsers as another host) — in visible ASCII only,
/// since browsers drop tabs and new lines from URLs (`/\t/evil` is `//evil` to them).
pub fn safe_next(next: &str) -> Option<&str> {
    let bytes = next.as_bytes();
    let ok = next.len() <= MAX_NEXT_LEN
        && bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/' | b'\\'))
        && bytes.iter().all(|b| b.is_ascii_graphic() && *b != b'\\');
    ok.then_some(next)
}

/// Declares the catalog: one field per message, each written once with both texts, so that
/// neither can be forgotten; also [`Messages::entries`], which tests use to check every text.
macro_rules! catalog {
    ($( $(#[doc = $doc:literal])* $key:ident { zh: $zh:literal, en: $en:literal } )*) => {
        /// Every text the UI shows, in one language. Templates use the fields by name.
        #[derive(Debug)]
        pub struct Messages {
            $( $(#[doc = $doc])* pub $key: &'static str, )*
        }

        /// The Simplified Chinese texts.
        pub static ZH_CN: Messages = Messages { $( $key: $zh, )* };

        /// The English texts.
        pub static EN: Messages = Messages { $( $key: $en, )* };

        impl Messages {
            /// Every message as (key, text), in declaration order.
            pub fn entries(&self) -> Vec<(&'static str, &'static str)> {
                vec![$( (stringify!($key), self.$key), )*]
            }
        }
    };
}

catalog! {
    /// After the brand in the navigation bar and the page titles.
    brand_tagline { zh: "计费运营后台", en: "Billing back office" }
    /// For screen readers: the first link of every page.
    skip_to_content { zh: "跳到正文", en: "Skip to content" }
    /// For screen readers: the button that opens the menu on a phone.
    nav_toggle { zh: "展开导航菜单", en: "Toggle navigation" }
    /// For screen readers: the main navigation landmark.
    nav_label { zh: "主导航", en: "Main navigation" }
    nav_dashboard { zh: "仪表盘", en: "Dashboard" }
    nav_tariffs { zh: "资费管理", en: "Tariffs" }
    nav_plans { zh: "套餐", en: "Plans" }
    nav_accounts { zh: "账户", en: "Accounts" }
    nav_cdrs { zh: "话单", en: "CDRs" }
    /// Records that could not be rated and wait for someone to fix them.
    nav_suspense { zh: "挂起话单", en: "Suspense" }
    nav_audit { zh: "审计日志", en: "Audit log" }
    /// Title of the language menu (and its label for screen readers).
    language { zh: "语言", en: "Language" }
    /// Before the user's name in the account menu.
    signed_in_as { zh: "当前登录", en: "Signed in as" }
    logout { zh: "退出登录", en: "Sign out" }
    /// For screen readers: the button that closes an alert.
    close { zh: "关闭", en: "Close" }

    login_title { zh: "登录", en: "Sign in" }
    login_heading { zh: "登录 Toll", en: "Sign in to Toll" }
    login_intro { zh: "电信与用量计费平台的运营后台。", en: "The back office of the telecom and usage billing platform." }
    login_username { zh: "用户名", en: "Username" }
    login_password { zh: "密码", en: "Password" }
    login_submit { zh: "登录", en: "Sign in" }
    login_error_invalid { zh: "用户名或密码错误。", en: "Wrong username or password." }
    login_error_throttled { zh: "登录尝试次数过多，请稍后再试。", en: "Too many sign-in attempts. Please try again later." }
    login_error_expired { zh: "会话已过期，请重新登录。", en: "Your session has expired. Please sign in again." }
    login_signed_out { zh: "您已安全退出。", en: "You have been signed out." }
    login_footer { zh: "Toll 是开源的电信计费平台。", en: "Toll is an open-source telecom billing platform." }

    dashboard_title { zh: "仪表盘", en: "Dashboard" }
    /// Before the time the figures were taken at.
    dashboard_as_of { zh: "数据截至", en: "Figures as of" }
    calls_today { zh: "今日通话", en: "Calls today" }
    calls_today_hint { zh: "今日已计费的通话话单", en: "Call records rated today" }
    revenue_today { zh: "今日收入", en: "Revenue today" }
    revenue_today_hint { zh: "今日已扣费金额", en: "Amount charged today" }
    suspense_open { zh: "挂起话单", en: "Suspense queue" }
    suspense_open_hint { zh: "无法计费、待处理的话单", en: "Records that could not be rated, awaiting review" }
    suspense_review { zh: "去处理", en: "Review" }
    traffic_title { zh: "今日每小时话务量", en: "Traffic per hour today" }
    traffic_series { zh: "通话数", en: "Calls" }
    traffic_hour_axis { zh: "时", en: "Hour" }
    traffic_total { zh: "合计", en: "Total" }
    traffic_peak { zh: "峰值时段", en: "Busiest hour" }
    traffic_empty { zh: "今日尚无话务。", en: "No traffic yet today." }
    /// Shown instead of the chart in a browser without JavaScript.
    chart_needs_js { zh: "图表需要启用 JavaScript，下表列出同样的数据。", en: "The chart needs JavaScript; the table below has the same figures." }
    /// Caption of the table that gives the chart's figures (also read by screen readers).
    traffic_table_caption { zh: "每小时通话数", en: "Calls per hour" }
    /// The temporary dashboard with made-up figures.
    preview_banner { zh: "预览：以下为示例数据，并非实时数据。", en: "Preview: the figures below are sample data, not live." }

    /// The page of a role that lacks the permission.
    forbidden_title { zh: "无权访问", en: "Not allowed" }
    forbidden_text { zh: "您的角色无权查看此页面或执行此操作。", en: "Your role may not see this page or do this." }
    not_found_title { zh: "未找到", en: "Not found" }
    not_found_text { zh: "您要找的内容不存在。", en: "What you are looking for does not exist." }
    /// Before the details of a failed action.
    action_failed { zh: "操作失败：", en: "The action failed: " }
    back { zh: "返回", en: "Back" }
    save { zh: "保存", en: "Save" }
    search { zh: "搜索", en: "Search" }
    previous_page { zh: "上一页", en: "Previous" }
    next_page { zh: "下一页", en: "Next" }
    none_yet { zh: "暂无记录。", en: "Nothing here yet." }
    col_actor { zh: "操作人", en: "By" }
    col_time { zh: "时间", en: "Time" }
    col_status { zh: "状态", en: "Status" }
    col_version { zh: "版本", en: "Version" }
    col_code { zh: "编码", en: "Code" }
    comment { zh: "备注", en: "Comment" }

    tariffs_title { zh: "资费管理", en: "Tariffs" }
    tariffs_versions { zh: "资费版本", en: "Tariff versions" }
    tariff_active { zh: "生效中", en: "Active" }
    tariff_format { zh: "格式", en: "Format" }
    tariff_uploaded { zh: "上传", en: "Uploaded" }
    tariff_upload_title { zh: "上传资费", en: "Upload a tariff" }
    tariff_upload_hint { zh: "CGRateS 目录的 .zip 压缩包，或一个 Toll .toml 文件。上传前会先编译检查。", en: "A .zip of a CGRateS folder, or one Toll .toml file. It is compiled before it is stored." }
    tariff_code { zh: "资费编码", en: "Tariff code" }
    tariff_file { zh: "文件", en: "File" }
    tariff_upload_submit { zh: "上传", en: "Upload" }
    tariff_uploaded_ok { zh: "资费已上传。", en: "Tariff uploaded." }
    tariff_activated_ok { zh: "资费已生效。", en: "Tariff activated." }
    tariff_activate { zh: "设为生效", en: "Activate" }
    tariff_inspect { zh: "查看", en: "Inspect" }
    tariff_counts { zh: "统计", en: "Counts" }
    tariff_files { zh: "源文件", en: "Source files" }
    tariff_bytes { zh: "字节", en: "bytes" }
    tester_title { zh: "试算通话费用", en: "Rate this call" }
    tester_destination { zh: "被叫号码", en: "Destination" }
    tester_start { zh: "开始时间（RFC 3339）", en: "Start (RFC 3339)" }
    tester_usage { zh: "时长 / 用量", en: "Usage" }
    tester_category { zh: "类别", en: "Category" }
    tester_subject { zh: "主体", en: "Subject" }
    tester_submit { zh: "试算", en: "Rate" }
    tester_cost { zh: "费用", en: "Cost" }
    tester_breakdown { zh: "分段明细", en: "Breakdown" }
    tester_no_tariff { zh: "尚无生效的资费。", en: "No tariff is active yet." }

    plans_title { zh: "套餐", en: "Plans" }
    plan_new { zh: "新建套餐（草稿）", en: "New plan (draft)" }
    plan_definition { zh: "定义（TOML）", en: "Definition (TOML)" }
    plan_create { zh: "创建草稿", en: "Create draft" }
    plan_created_ok { zh: "草稿已创建。", en: "Draft created." }
    plan_saved_ok { zh: "草稿已保存。", en: "Draft saved." }
    plan_action_ok { zh: "套餐状态已更新。", en: "Plan status updated." }
    plan_author { zh: "作者", en: "Author" }
    plan_versions { zh: "版本", en: "Versions" }
    plan_history { zh: "变更历史", en: "History" }
    plan_edit { zh: "编辑草稿", en: "Edit draft" }
    plan_submit { zh: "提交审批", en: "Submit for approval" }
    plan_approve { zh: "批准", en: "Approve" }
    plan_reject { zh: "驳回", en: "Reject" }
    plan_activate { zh: "发布生效", en: "Activate" }
    plan_retire { zh: "下线", en: "Retire" }
    /// The four-eyes rule refused the action.
    plan_four_eyes { zh: "双人审核：作者不能批准自己提交的套餐，请由另一位审批人处理。", en: "Four-eyes rule: the author cannot approve their own plan; another approver must do it." }
    status_draft { zh: "草稿", en: "Draft" }
    status_pending { zh: "待审批", en: "Pending approval" }
    status_approved { zh: "已批准", en: "Approved" }
    status_active { zh: "生效中", en: "Active" }
    status_retired { zh: "已下线", en: "Retired" }

    accounts_title { zh: "账户", en: "Accounts" }
    accounts_search_hint { zh: "账户编码、客户、号码", en: "Account code, customer, number" }
    account_customer { zh: "客户", en: "Customer" }
    account_mode { zh: "付费方式", en: "Mode" }
    account_balance { zh: "余额", en: "Balance" }
    account_available { zh: "可用额度", en: "Available" }
    account_credit_limit { zh: "信用额度", en: "Credit limit" }
    account_lines { zh: "号码", en: "Lines" }
    account_allowances { zh: "套餐余量", en: "Allowances" }
    account_topup { zh: "充值", en: "Top up" }
    account_amount { zh: "金额", en: "Amount" }
    account_topup_ok { zh: "充值成功。", en: "Top-up posted." }
    mode_prepaid { zh: "预付费", en: "Prepaid" }
    mode_postpaid { zh: "后付费", en: "Postpaid" }
    mode_unlimited { zh: "不限额", en: "Unlimited" }
    allowance_used { zh: "已用", en: "used" }
    subs_title { zh: "订阅", en: "Subscriptions" }
    sub_plan { zh: "套餐", en: "Plan" }
    sub_anchor { zh: "起始日", en: "Anchor date" }
    sub_period_end { zh: "本期截止（不含）", en: "Period ends (exclusive)" }
    sub_changes { zh: "变更记录", en: "Plan changes" }
    change_title { zh: "变更套餐", en: "Change plan" }
    change_to { zh: "新套餐", en: "New plan" }
    change_date { zh: "生效日期", en: "Effective date" }
    change_when { zh: "生效方式", en: "Takes effect" }
    change_now { zh: "立即（按天折算）", en: "Now (prorated by day)" }
    change_period_end { zh: "本期结束时", en: "At the end of the period" }
    change_preview { zh: "预览折算", en: "Preview proration" }
    change_submit { zh: "确认变更", en: "Change plan" }
    change_no_plans { zh: "没有其他生效中的套餐可选。", en: "No other active plan to change to." }
    change_ok { zh: "套餐已变更。", en: "Plan changed." }
    /// The preview's sentence before the figures: "from A to B on DATE".
    preview_heading { zh: "折算预览", en: "Proration preview" }
    preview_days { zh: "剩余天数 / 本期天数", en: "Days remaining / in period" }
    preview_period { zh: "计费周期", en: "Billing period" }
    preview_credit { zh: "退还旧套餐（未用部分）", en: "Credit for the old plan (unused days)" }
    preview_charge { zh: "收取新套餐（剩余天数）", en: "Charge for the new plan (days left)" }
    preview_net { zh: "净额（正数为扣款，负数为退款）", en: "Net (positive: the wallet pays; negative: it receives)" }
    preview_at_period_end { zh: "在本期结束时生效，不做折算；新套餐月费在续订时收取。", en: "Takes effect when the period ends, with no proration; the new plan's fee is charged at renewal." }

    cdrs_title { zh: "话单查询", en: "CDR search" }
    cdr_number { zh: "号码（主叫或被叫）", en: "Number (caller or callee)" }
    cdr_account { zh: "账户", en: "Account" }
    cdr_from { zh: "起始日期", en: "From" }
    cdr_to { zh: "结束日期（含）", en: "To (inclusive)" }
    cdr_caller { zh: "主叫", en: "Caller" }
    cdr_callee { zh: "被叫", en: "Callee" }
    cdr_usage { zh: "用量", en: "Usage" }
    cdr_amount { zh: "金额", en: "Amount" }
    cdr_priced_by { zh: "计价方式", en: "Priced by" }
    cdr_export { zh: "导出 CSV", en: "Export CSV" }

    suspense_title { zh: "挂起话单", en: "Suspense" }
    suspense_class { zh: "类别", en: "Class" }
    suspense_reason { zh: "原因", en: "Reason" }
    suspense_source { zh: "来源", en: "Source" }
    suspense_attempts { zh: "尝试次数", en: "Attempts" }
    suspense_raw { zh: "原始记录", en: "Raw record" }
    suspense_record { zh: "规范化记录（JSON）", en: "Normalised record (JSON)" }
    suspense_save_reprocess { zh: "保存并重新处理", en: "Save and re-process" }
    suspense_reprocess { zh: "重新处理", en: "Re-process" }
    suspense_discard { zh: "放弃", en: "Discard" }
    suspense_edited_ok { zh: "记录已保存。", en: "Record saved." }
    suspense_discarded_ok { zh: "已放弃该记录。", en: "Item discarded." }
    suspense_reprocessed_ok { zh: "已重新处理：计费成功。", en: "Re-processed: the record was charged." }
    suspense_still_failing { zh: "重新处理后仍无法计费，请查看原因。", en: "Re-processed, but the record still cannot be charged; see the reason." }
    suspense_status_open { zh: "待处理", en: "Open" }
    suspense_status_resolved { zh: "已解决", en: "Resolved" }
    suspense_status_discarded { zh: "已放弃", en: "Discarded" }

    audit_title { zh: "审计日志", en: "Audit log" }
    audit_action { zh: "操作", en: "Action" }
    audit_entity { zh: "对象", en: "Object" }
    audit_before { zh: "变更前", en: "Before" }
    audit_after { zh: "变更后", en: "After" }

    portal_title { zh: "我的账户", en: "My account" }
    portal_recent { zh: "最近使用记录", en: "Recent usage" }
    portal_request_topup { zh: "申请充值", en: "Request a top-up" }
    portal_request_hint { zh: "提交后运营人员将处理您的充值申请。", en: "An operator will process your request." }
    portal_request_submit { zh: "提交申请", en: "Send request" }
    portal_request_ok { zh: "充值申请已提交。", en: "Your top-up request was sent." }
    portal_no_account { zh: "您的登录未绑定账户。", en: "Your sign-in is not bound to an account." }

    nav_invoices { zh: "账单", en: "Invoices" }
    invoices_title { zh: "账单与发票", en: "Invoices" }
    inv_number { zh: "编号", en: "Number" }
    inv_kind { zh: "类型", en: "Type" }
    inv_period { zh: "账期", en: "Period" }
    inv_status { zh: "状态", en: "Status" }
    inv_total { zh: "金额", en: "Total" }
    inv_paid { zh: "已付", en: "Paid" }
    inv_kind_invoice { zh: "发票", en: "Invoice" }
    inv_kind_credit_note { zh: "红字发票", en: "Credit note" }
    inv_status_draft { zh: "草稿", en: "Draft" }
    inv_status_finalized { zh: "已出账", en: "Finalized" }
    inv_status_paid { zh: "已结清", en: "Paid" }
    inv_status_void { zh: "已作废", en: "Void" }
    inv_filter { zh: "筛选", en: "Filter" }
    /// A form that invoices every account of the tenant for one month.
    bill_run_title { zh: "出账", en: "Bill run" }
    bill_run_hint { zh: "为每个账户生成该账期的账单：每户一张，重复执行不会重复出账。", en: "Invoices every account for the period: one invoice each; running it again creates none twice." }
    bill_run_period { zh: "账期（月份，如 2026-10）", en: "Period (month, e.g. 2026-10)" }
    bill_run_draft { zh: "仅生成草稿（暂不编号）", en: "Drafts only (no numbers yet)" }
    bill_run_submit { zh: "开始出账", en: "Run" }
    bill_run_ok { zh: "出账完成：", en: "Bill run finished: " }
    inv_finalize { zh: "确认出账", en: "Finalize" }
    inv_void { zh: "作废草稿", en: "Void draft" }
    inv_credit { zh: "开具红字发票", en: "Issue a credit note" }
    inv_credit_reason { zh: "原因", en: "Reason" }
    inv_pdf_zh { zh: "下载 PDF（中文）", en: "PDF (Chinese)" }
    inv_pdf_en { zh: "下载 PDF（英文）", en: "PDF (English)" }
    inv_finalized_ok { zh: "账单已确认并编号。", en: "Invoice finalized and numbered." }
    inv_voided_ok { zh: "草稿已作废。", en: "Draft voided." }
    inv_credited_ok { zh: "红字发票已开具。", en: "Credit note issued." }
    inv_payment_title { zh: "登记收款", en: "Record a payment" }
    inv_payment_method { zh: "收款方式", en: "Method" }
    inv_method_bank { zh: "银行转账", en: "Bank transfer" }
    inv_method_cash { zh: "现金", en: "Cash" }
    inv_method_card { zh: "银行卡", en: "Card" }
    inv_payment_reference { zh: "流水号", en: "Reference" }
    inv_payment_submit { zh: "登记", en: "Record" }
    inv_payment_ok { zh: "收款已登记并核销账单。", en: "Payment recorded and allocated to invoices." }
    /// The title of the frame that shows the invoice as printed.
    inv_document { zh: "账单预览", en: "Invoice as printed" }
    portal_invoices { zh: "我的账单", en: "My invoices" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_has_both_languages_and_no_empty_text() {
        let zh = ZH_CN.entries();
        let en = EN.entries();
        assert_eq!(zh.len(), en.len());
        for ((kz, tz), (ke, te)) in zh.iter().zip(&en) {
            assert_eq!(kz, ke);
            assert!(!tz.trim().is_empty(), "{kz}: empty zh-CN text");
            assert!(!te.trim().is_empty(), "{ke}: empty en text");
        }
        // The Chinese catalog is Chinese: a text copied over from English untranslated would
        // show here (brand names aside, every message has a Han character).
        for (k, t) in &zh {
            assert!(
                t.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{k}: zh-CN text without Chinese: {t}"
            );
        }
    }

    #[test]
    fn tags_round_trip() {
        for l in Lang::ALL {
            assert_eq!(Lang::from_tag(l.tag()), Some(l));
        }
        assert_eq!(Lang::from_tag("ZH-cn"), Some(Lang::ZhCn));
        assert_eq!(Lang::from_tag("fr"), None);
    }

    #[test]
    fn accept_language_prefers_the_highest_weight_we_have() {
        let al = Lang::from_accept_language;
        assert_eq!(al("zh-CN,zh;q=0.9,en;q=0.8"), Some(Lang::ZhCn));
        assert_eq!(al("en-US,en;q=0.9,zh-CN;q=0.8"), Some(Lang::En));
        assert_eq!(al("fr-FR, zh-TW;q=0.5, en;q=0.4"), Some(Lang::ZhCn));
        assert_eq!(al("en;q=0.5, zh-Hans;q=0.7"), Some(Lang::ZhCn));
        assert_eq!(al("zh;q=0, en;q=0.1"), Some(Lang::En));
        assert_eq!(al("fr, de"), None);
        assert_eq!(al("*"), None);
        assert_eq!(
            al("zh;q=2, en;q=0.3"),
            Some(Lang::En),
            "invalid weight drops zh"
        );
        assert_eq!(al(""), None);
    }

    #[test]
    fn cookie_wins_over_accept_language() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("zh-CN"));
        assert_eq!(Lang::from_headers(&h), Lang::ZhCn);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("session=abc; toll_lang=en"),
        );
        assert_eq!(Lang::from_headers(&h), Lang::En);
        h.insert(header::COOKIE, HeaderValue::from_static("toll_lang=xx"));
        assert_eq!(Lang::from_headers(&h), Lang::ZhCn, "unknown cookie ignored");
        assert_eq!(Lang::from_headers(&HeaderMap::new()), Lang::En);
    }

    #[test]
    fn next_must_be_a_path_of_this_site() {
        for ok in ["/ui/", "/ui/accounts?page=2&q=a%20b", "/"] {
            assert_eq!(safe_next(ok), Some(ok));
        }
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "evil.example",
            "javascript:alert(1)",
            "/\t/evil.example",
            "/ui/\\\\evil",
            "/ui/ x",
            "/ui/中文",
            "",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
        assert_eq!(safe_next(&format!("/{}", "a".repeat(MAX_NEXT_LEN))), None);
    }
}
