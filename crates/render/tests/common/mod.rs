//! The scenario invoices of the golden tests and the benchmark: invoices as a bill run composes
//! them (`Invoice::compose`), with fixed dates so that every output is reproducible.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use jiff::civil::date;
use toll_billing::invoice::{Quantity, QuantityUnit};
use toll_billing::{
    Charge, Invoice, InvoiceDocument, InvoiceKind, InvoiceNumber, Lang, LineKind, Party, TaxMode,
    TaxRate,
};
use toll_core::{Currency, Micros, RoundingMethod};

pub fn vat(percent: u32) -> TaxRate {
    TaxRate::from_ppm("VAT", percent * 10_000).unwrap()
}

fn m(s: &str) -> Micros {
    s.parse().unwrap()
}

/// A charge of `kind` with a label, an exact amount and a tax rate.
pub fn charge(kind: LineKind, label: &str, amount: &str, tax: Option<TaxRate>) -> Charge {
    Charge {
        kind,
        label: label.into(),
        detail: None,
        quantity: None,
        count: None,
        amount: m(amount),
        tax,
    }
}

trait With {
    fn detail(self, d: &str) -> Self;
    fn qty(self, value: i64, unit: QuantityUnit) -> Self;
    fn count(self, n: i64) -> Self;
}

impl With for Charge {
    fn detail(mut self, d: &str) -> Self {
        self.detail = Some(d.into());
        self
    }
    fn qty(mut self, value: i64, unit: QuantityUnit) -> Self {
        self.quantity = Some(Quantity { value, unit });
        self
    }
    fn count(mut self, n: i64) -> Self {
        self.count = Some(n);
        self
    }
}

pub fn compose(mode: TaxMode, charges: Vec<Charge>) -> Invoice {
    Invoice::compose(
        InvoiceKind::Invoice,
        Currency::CNY,
        mode,
        RoundingMethod::Middle,
        charges,
    )
    .unwrap()
}

pub fn seller(lang: Lang) -> Party {
    match lang {
        Lang::Zh => Party {
            name: "华通电信有限公司".into(),
            address: vec![
                "广东省深圳市南山区科苑路 8 号".into(),
                "华通大厦 12 层，邮编 518057".into(),
            ],
            tax_id: Some("91440300MA5FQ3XK2R".into()),
        },
        Lang::En => Party {
            name: "Huatong Telecom Co., Ltd.".into(),
            address: vec![
                "12/F Huatong Tower, 8 Keyuan Road, Nanshan".into(),
                "Shenzhen, Guangdong 518057, China".into(),
            ],
            tax_id: Some("91440300MA5FQ3XK2R".into()),
        },
    }
}

pub fn buyer(lang: Lang) -> Party {
    match lang {
        Lang::Zh => Party {
            name: "深圳市前海数联科技有限公司".into(),
            address: vec!["深圳市前海深港合作区前湾一路 1 号 A 栋 201 室".into()],
            tax_id: Some("91440300MA5G8K2X7Q".into()),
        },
        Lang::En => Party {
            name: "Acme Trading Ltd.".into(),
            address: vec![
                "Unit 12, 88 Queen's Road Central".into(),
                "Hong Kong".into(),
            ],
            tax_id: None,
        },
    }
}

pub fn document(lang: Lang, number: Option<&str>, invoice: Invoice) -> InvoiceDocument {
    InvoiceDocument {
        number: number.map(str::to_string),
        issue_date: date(2026, 11, 3),
        period_start: date(2026, 10, 1),
        period_last_day: date(2026, 10, 31),
        seller: seller(lang),
        buyer: buyer(lang),
        account: "ACC-000123".into(),
        status: if number.is_some() {
            "finalized"
        } else {
            "draft"
        }
        .into(),
        lang,
        note: None,
        invoice,
    }
}

/// (1) A plan change on 16 October: the old plan's fee, its unused half credited and the new
/// plan's half charged.
pub fn plan_change() -> InvoiceDocument {
    let inv = compose(
        TaxMode::Inclusive,
        vec![
            charge(LineKind::RecurringFee, "基础套餐 38", "38", Some(vat(9))),
            charge(
                LineKind::Proration,
                "基础套餐 38",
                "-19.612903",
                Some(vat(9)),
            )
            .detail("10月16日起停用")
            .qty(16, QuantityUnit::Days),
            charge(
                LineKind::Proration,
                "畅享套餐 58",
                "29.935484",
                Some(vat(9)),
            )
            .detail("10月16日起生效")
            .qty(16, QuantityUnit::Days),
            charge(LineKind::Usage, "国内", "4.05", Some(vat(9)))
                .qty(2_430, QuantityUnit::Seconds)
                .count(31),
        ],
    );
    document(Lang::Zh, Some("INV-2026-000101"), inv)
}

/// (2) Included minutes and data used up, the rest charged as overage.
pub fn allowance_overflow() -> InvoiceDocument {
    let inv = compose(
        TaxMode::Inclusive,
        vec![
            charge(LineKind::RecurringFee, "Plus 58", "58", Some(vat(9))),
            charge(LineKind::AllowanceUse, "Domestic calls", "0", Some(vat(9)))
                .qty(30_000, QuantityUnit::Seconds),
            charge(LineKind::AllowanceUse, "Mobile data", "0", Some(vat(6)))
                .qty(10 << 30, QuantityUnit::Bytes),
            charge(LineKind::Overage, "Domestic calls", "18.27", Some(vat(9)))
                .qty(7_308, QuantityUnit::Seconds),
            charge(LineKind::Overage, "Mobile data", "15", Some(vat(6)))
                .qty(1_610_612_736, QuantityUnit::Bytes),
        ],
    );
    let mut doc = document(Lang::En, Some("INV-2026-000102"), inv);
    doc.status = "paid".into();
    doc
}

/// (3) International calls grouped by destination, and messages abroad.
pub fn international() -> InvoiceDocument {
    let inv = compose(
        TaxMode::Inclusive,
        vec![
            charge(LineKind::RecurringFee, "畅享套餐 58", "58", Some(vat(9))),
            charge(LineKind::Usage, "美国", "11.16", Some(vat(9)))
                .qty(1_860, QuantityUnit::Seconds)
                .count(7),
            charge(LineKind::Usage, "日本", "8.7", Some(vat(9)))
                .qty(725, QuantityUnit::Seconds)
                .count(3),
            charge(LineKind::Usage, "英国", "43.2", Some(vat(9)))
                .qty(3_600, QuantityUnit::Seconds)
                .count(2),
            charge(LineKind::Usage, "中国香港", "2.4", Some(vat(9)))
                .qty(290, QuantityUnit::Seconds)
                .count(4),
            charge(LineKind::Usage, "国际及港澳台", "7.2", Some(vat(6)))
                .qty(12, QuantityUnit::Messages)
                .count(12),
        ],
    );
    document(Lang::Zh, Some("INV-2026-000103"), inv)
}

/// (4) A typical consumer bill, prices including VAT at two rates (basic and value-added
/// services): eight lines. Also the benchmark's invoice.
pub fn tax_inclusive() -> InvoiceDocument {
    let inv = compose(
        TaxMode::Inclusive,
        vec![
            charge(LineKind::RecurringFee, "畅享套餐 58", "58", Some(vat(9))),
            charge(LineKind::AllowanceUse, "国内通话", "0", Some(vat(9)))
                .qty(18_000, QuantityUnit::Seconds),
            charge(LineKind::AllowanceUse, "国内流量", "0", Some(vat(6)))
                .qty(21_474_836_480, QuantityUnit::Bytes),
            charge(LineKind::Usage, "国内", "12.345", Some(vat(9)))
                .qty(7_308, QuantityUnit::Seconds)
                .count(58),
            charge(LineKind::Usage, "国际", "6.6", Some(vat(9)))
                .qty(660, QuantityUnit::Seconds)
                .count(2),
            charge(LineKind::Usage, "国内", "3.1", Some(vat(6)))
                .qty(31, QuantityUnit::Messages)
                .count(31),
            charge(LineKind::AddOn, "流量加油包 5GB", "20", Some(vat(6))),
            charge(LineKind::Discount, "老用户优惠", "-10", Some(vat(9))),
        ],
    );
    document(Lang::Zh, Some("INV-2026-000104"), inv)
}

/// (5) A business invoice, prices excluding tax at two rates; three calls of 0.333333 each
/// print 0.33 but sum to 1.00, so a rounding line makes the lines add up.
pub fn tax_exclusive() -> InvoiceDocument {
    let inv = compose(
        TaxMode::Exclusive,
        vec![
            charge(LineKind::RecurringFee, "Business 200", "200", Some(vat(9))),
            charge(LineKind::Usage, "Germany", "0.333333", Some(vat(9)))
                .qty(20, QuantityUnit::Seconds)
                .count(1),
            charge(LineKind::Usage, "France", "0.333333", Some(vat(9)))
                .qty(20, QuantityUnit::Seconds)
                .count(1),
            charge(LineKind::Usage, "Italy", "0.333333", Some(vat(9)))
                .qty(20, QuantityUnit::Seconds)
                .count(1),
            charge(LineKind::AddOn, "Cloud PBX seats", "150", Some(vat(6)))
                .qty(5, QuantityUnit::Units),
            charge(LineKind::OneOff, "Number porting", "50", Some(vat(6))),
        ],
    );
    document(Lang::En, Some("INV-2026-000105"), inv)
}

/// (6) A credit note reversing an invoice in full.
pub fn credit_note() -> InvoiceDocument {
    let original = tax_inclusive();
    let corrects: InvoiceNumber = "INV-2026-000104".parse().unwrap();
    let inv = Invoice::full_credit(&original.invoice, corrects).unwrap();
    let mut doc = document(Lang::Zh, Some("CN-2026-000007"), inv);
    doc.note = Some("重复出账，全额冲销原发票。".into());
    doc
}

/// (7) Calls of September that reached Toll after September's invoice, on a draft.
pub fn late_usage() -> InvoiceDocument {
    let inv = compose(
        TaxMode::Exclusive,
        vec![
            charge(LineKind::RecurringFee, "Business 200", "200", Some(vat(9))),
            charge(LineKind::LateUsage, "Calls to Germany", "3.6", Some(vat(9)))
                .detail("Sep 2026")
                .qty(1_440, QuantityUnit::Seconds)
                .count(6),
            charge(
                LineKind::Adjustment,
                "Re-rated calls to Japan",
                "-1.25",
                Some(vat(9)),
            ),
        ],
    );
    document(Lang::En, None, inv)
}

/// Every scenario by the name of its snapshot files.
pub fn scenarios() -> Vec<(&'static str, InvoiceDocument)> {
    vec![
        ("1_plan_change", plan_change()),
        ("2_allowance_overflow", allowance_overflow()),
        ("3_international", international()),
        ("4_tax_inclusive", tax_inclusive()),
        ("5_tax_exclusive", tax_exclusive()),
        ("6_credit_note", credit_note()),
        ("7_late_usage", late_usage()),
    ]
}
