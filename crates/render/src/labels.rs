//! The invoice's fixed words in each language, and the names of line kinds.
//!
//! Kept in one table per language so that a translation is reviewed in one place, and so a
//! test can check that every fixed word is drawable by the embedded fonts.

use toll_billing::invoice::QuantityUnit;
use toll_billing::{Lang, LineKind};

/// The fixed words of one language.
#[derive(Debug)]
pub struct Words {
    pub invoice: &'static str,
    pub credit_note: &'static str,
    pub draft: &'static str,
    pub void: &'static str,
    pub seller: &'static str,
    pub buyer: &'static str,
    pub tax_id: &'static str,
    pub number: &'static str,
    pub issue_date: &'static str,
    pub period: &'static str,
    pub account: &'static str,
    pub status: &'static str,
    pub corrects: &'static str,
    pub description: &'static str,
    pub quantity: &'static str,
    pub tax_rate: &'static str,
    /// Column head of amounts; `{}` is the currency code.
    pub amount_in: &'static str,
    pub subtotal: &'static str,
    pub tax_total: &'static str,
    pub total: &'static str,
    /// Before the total in capitals (zh only).
    pub capitals: &'static str,
    pub of_which: &'static str,
    /// A tax line's base: "on 70.35".
    pub tax_base: &'static str,
    pub note: &'static str,
    pub prices_include_tax: &'static str,
    pub prices_exclude_tax: &'static str,
    /// Footer; `{}` is the currency code.
    pub amounts_in: &'static str,
    pub vat: &'static str,
    pub no_tax: &'static str,
}

const EN: Words = Words {
    invoice: "Invoice",
    credit_note: "Credit note",
    draft: "DRAFT",
    void: "VOID",
    seller: "From",
    buyer: "Bill to",
    tax_id: "Tax ID",
    number: "Invoice no.",
    issue_date: "Issue date",
    period: "Billing period",
    account: "Account",
    status: "Status",
    corrects: "Corrects invoice",
    description: "Description",
    quantity: "Quantity",
    tax_rate: "Tax",
    amount_in: "Amount ({})",
    subtotal: "Subtotal (excl. tax)",
    tax_total: "Tax",
    total: "Total",
    capitals: "",
    of_which: "of which",
    tax_base: "on",
    note: "Note",
    prices_include_tax: "Prices include tax.",
    prices_exclude_tax: "Tax is added to the prices.",
    amounts_in: "Amounts in {}.",
    vat: "VAT",
    no_tax: "–",
};

const ZH: Words = Words {
    invoice: "发票",
    credit_note: "红字发票（贷项通知单）",
    draft: "草稿",
    void: "已作废",
    seller: "销售方",
    buyer: "购买方",
    tax_id: "纳税人识别号",
    number: "发票号码",
    issue_date: "开票日期",
    period: "计费周期",
    account: "账户",
    status: "状态",
    corrects: "原发票号码",
    description: "项目",
    quantity: "数量",
    tax_rate: "税率",
    amount_in: "金额（{}）",
    subtotal: "小计（不含税）",
    tax_total: "税额",
    total: "合计",
    capitals: "价税合计（大写）",
    of_which: "其中",
    tax_base: "计税金额",
    note: "备注",
    prices_include_tax: "价格已含税。",
    prices_exclude_tax: "价格不含税，税额另计。",
    amounts_in: "金额单位：{}。",
    vat: "增值税",
    no_tax: "–",
};

pub fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::En => &EN,
        Lang::Zh => &ZH,
    }
}

/// `template` with its `{}` replaced by `value`.
pub fn fill(template: &str, value: &str) -> String {
    template.replacen("{}", value, 1)
}

/// A status as stored (draft, finalized, paid, void) in the invoice's language; an unknown one
/// is printed as it is.
pub fn status(status: &str, lang: Lang) -> String {
    let word = match (status, lang) {
        ("draft", Lang::En) => "Draft",
        ("finalized", Lang::En) => "Issued",
        ("paid", Lang::En) => "Paid",
        ("void", Lang::En) => "Void",
        ("draft", Lang::Zh) => "草稿",
        ("finalized", Lang::Zh) => "已开具",
        ("paid", Lang::Zh) => "已支付",
        ("void", Lang::Zh) => "已作废",
        (other, _) => other,
    };
    word.to_string()
}

/// A tax's printed name: the tenant's name, except that the usual names of VAT are printed in
/// the invoice's language (a rate named "VAT" reads 增值税 on a Chinese invoice).
pub fn tax_name(name: &str, lang: Lang) -> String {
    let is_vat = name.eq_ignore_ascii_case("VAT") || name == "增值税";
    if is_vat {
        words(lang).vat.to_string()
    } else {
        name.to_string()
    }
}

/// The name a line is printed under: its kind in the invoice's language, with the line's own
/// label or detail where the kind reads better with them. Returns the title and what is left of
/// the label and detail to print beneath it.
pub fn line_title(
    kind: LineKind,
    label: &str,
    detail: Option<&str>,
    unit: Option<QuantityUnit>,
    lang: Lang,
) -> (String, Vec<String>) {
    let zh = lang == Lang::Zh;
    // Label and detail beneath a plain kind name.
    let under = || {
        let mut v = vec![label.to_string()];
        v.extend(detail.map(str::to_string));
        v
    };
    let plain = |en: &str, cn: &str| (if zh { cn } else { en }).to_string();
    match kind {
        LineKind::RecurringFee => (plain("Monthly fee", "月租费"), under()),
        LineKind::Proration => (plain("Plan change", "套餐变更"), under()),
        LineKind::AllowanceUse => (plain("Included allowance used", "套餐内用量"), under()),
        LineKind::Overage => (plain("Overage", "超出套餐"), under()),
        LineKind::AddOn => (plain("Add-on", "附加包"), under()),
        LineKind::OneOff => (plain("One-off charge", "一次性费用"), under()),
        LineKind::Discount => (plain("Discount", "优惠"), under()),
        LineKind::Adjustment => (plain("Adjustment", "调整"), under()),
        LineKind::Usage => {
            let title = match (unit, zh) {
                (Some(QuantityUnit::Seconds), false) => format!("Calls to {label}"),
                (Some(QuantityUnit::Seconds), true) => format!("{label} 通话"),
                (Some(QuantityUnit::Messages), false) => format!("Messages to {label}"),
                (Some(QuantityUnit::Messages), true) => format!("{label} 短信"),
                (Some(QuantityUnit::Bytes), false) => format!("Data: {label}"),
                (Some(QuantityUnit::Bytes), true) => format!("{label} 流量"),
                (_, false) => format!("Usage: {label}"),
                (_, true) => format!("{label} 用量"),
            };
            (title, detail.map(str::to_string).into_iter().collect())
        }
        LineKind::LateUsage => {
            let title = match (detail, zh) {
                (Some(d), false) => format!("Late usage ({d})"),
                (Some(d), true) => format!("补收上期用量 ({d})"),
                (None, false) => "Late usage".to_string(),
                (None, true) => "补收上期用量".to_string(),
            };
            (title, vec![label.to_string()])
        }
        // The label of a tax line is its rate's name; the rate is printed in its own column.
        LineKind::Tax => (tax_name(label, lang), Vec::new()),
        // The label of a rounding line is the word "rounding" itself.
        LineKind::Rounding => (plain("Rounding", "尾差调整"), Vec::new()),
    }
}

/// Every fixed word of both languages, for the font coverage test.
#[cfg(test)]
pub fn all_fixed_words() -> Vec<String> {
    let mut out = Vec::new();
    for lang in [Lang::En, Lang::Zh] {
        let w = words(lang);
        out.extend(
            [
                w.invoice,
                w.credit_note,
                w.draft,
                w.void,
                w.seller,
                w.buyer,
                w.tax_id,
                w.number,
                w.issue_date,
                w.period,
                w.account,
                w.status,
                w.corrects,
                w.description,
                w.quantity,
                w.tax_rate,
                w.amount_in,
                w.subtotal,
                w.tax_total,
                w.total,
                w.capitals,
                w.of_which,
                w.tax_base,
                w.note,
                w.prices_include_tax,
                w.prices_exclude_tax,
                w.amounts_in,
                w.vat,
                w.no_tax,
            ]
            .map(str::to_string),
        );
        for s in ["draft", "finalized", "paid", "void"] {
            out.push(status(s, lang));
        }
        let units = [
            None,
            Some(QuantityUnit::Seconds),
            Some(QuantityUnit::Messages),
            Some(QuantityUnit::Bytes),
        ];
        for kind in LineKind::ALL {
            for unit in units {
                let (title, under) = line_title(kind, "x", Some("y"), unit, lang);
                out.push(title);
                out.extend(under);
            }
        }
    }
    out
}
