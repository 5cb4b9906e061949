//! Whose rating profiles apply to an event, found from its tenant, category and subject text.
//!
//! The general look-up interns the three strings (three hash probes) and then reads up to four
//! profile lists (the subject's own and `*any`, each carrier-specific and not). For a tariff
//! without carrier-specific profiles the answer depends on the three strings alone, so it is
//! worked out once at compile time: the tenant and category find their *scope* (usually by
//! comparing a handful), and one hash of the subject finds its *timeline*: its own activations
//! and the `*any` ones that apply before its own begin, merged into one list. Events whose
//! subject has no profile of its own (usually most of them: one subject per account) take the
//! scope's `*any` timeline.

use std::hash::Hasher;

use hashbrown::HashTable;
use rustc_hash::{FxHashMap, FxHasher};

#[cfg(test)]
use crate::tariff::ANY;
use crate::tariff::{Activation, NONE, ProfileKey};

/// Most profile keys a table is built for; more keep the general look-up.
const MAX_ENTRIES: usize = 1 << 24;

/// Up to this many scopes are searched one by one.
const LINEAR_SCOPES: usize = 8;

/// The profiles of one tenant and category.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    tenant: Box<str>,
    category: Box<str>,
    pub tenant_id: u32,
    pub category_id: u32,
    /// `*any`'s timeline, for subjects without profiles of their own (empty if none).
    pub any: Box<[Activation]>,
}

/// A subject with profiles of its own, under one scope.
#[derive(Debug, Clone)]
struct Subject {
    scope: u32,
    subject: Box<str>,
    /// Sorted by `at`; the activation in force at `t` is the last one with `at <= t`: the
    /// same answer as asking the subject's own profiles first and `*any`'s after them.
    timeline: Box<[Activation]>,
}

/// Indices into a list, by a hash of their text computed once per look-up; the caller
/// compares the text.
#[derive(Debug, Clone, Default)]
struct Slots(HashTable<(u64, u32)>);

impl Slots {
    fn build(hashes: impl ExactSizeIterator<Item = u64>) -> Slots {
        let mut table = HashTable::with_capacity(hashes.len());
        for (i, hash) in hashes.enumerate() {
            table.insert_unique(hash, (hash, i as u32), |&(h, _)| h);
        }
        Slots(table)
    }

    /// The first index stored under `hash` for which `is` holds.
    #[inline]
    fn find(&self, hash: u64, is: impl Fn(u32) -> bool) -> Option<u32> {
        self.0
            .find(hash, |&(h, i)| h == hash && is(i))
            .map(|&(_, i)| i)
    }
}

/// Tenant and category → [`Scope`]; (scope, subject) → the subject's timeline.
#[derive(Debug, Clone)]
pub(crate) struct SubjectTable {
    scopes: Box<[Scope]>,
    scope_slots: Slots,
    subjects: Box<[Subject]>,
    subject_slots: Slots,
}

#[inline]
fn scope_hash(tenant: &str, category: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(tenant.as_bytes());
    h.write_u8(0xff);
    h.write(category.as_bytes());
    h.finish()
}

#[inline]
fn subject_hash(scope: u32, subject: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write_u32(scope);
    h.write(subject.as_bytes());
    h.finish()
}

/// String equality without a call to `memcmp` for the short strings tenants, categories and
/// subjects are: two overlapping word compares.
#[inline]
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if a.len() <= 16
        && let Some(eq) = ends_eq::<8>(a, b).or_else(|| ends_eq::<4>(a, b))
    {
        return eq;
    }
    a == b
}

/// Whether the first and the last `N` bytes agree, if both strings have `N` (for equal
/// lengths up to `2 N` that is equality).
#[inline]
fn ends_eq<const N: usize>(a: &[u8], b: &[u8]) -> Option<bool> {
    Some(
        a.first_chunk::<N>()? == b.first_chunk::<N>()?
            && a.last_chunk::<N>()? == b.last_chunk::<N>()?,
    )
}

impl SubjectTable {
    /// The table of a tariff's profiles, or `None` when some are carrier-specific (the
    /// carrier then takes part in the look-up) or there are too many.
    pub(crate) fn build(
        profiles: &FxHashMap<ProfileKey, Vec<Activation>>,
        strings: &[Box<str>],
        any_id: u32,
    ) -> Option<SubjectTable> {
        if profiles.len() > MAX_ENTRIES || profiles.keys().any(|k| k.3 != NONE) {
            return None;
        }
        let mut keys: Vec<&ProfileKey> = profiles.keys().collect();
        keys.sort_unstable();
        let text = |id: u32| strings.get(id as usize).cloned();
        let mut scopes: Vec<Scope> = Vec::new();
        let mut subjects: Vec<Subject> = Vec::new();
        for &(t, c, s, _) in keys {
            let any = profiles.get(&(t, c, any_id, NONE)).map(Vec::as_slice);
            // Keys are sorted: a new (tenant, category) starts a new scope.
            if scopes
                .last()
                .is_none_or(|sc| (sc.tenant_id, sc.category_id) != (t, c))
            {
                scopes.push(Scope {
                    tenant: text(t)?,
                    category: text(c)?,
                    tenant_id: t,
                    category_id: c,
                    any: timeline(None, any),
                });
            }
            if s != any_id {
                let own = profiles.get(&(t, c, s, NONE)).map(Vec::as_slice);
                subjects.push(Subject {
                    scope: scopes.len() as u32 - 1,
                    subject: text(s)?,
                    timeline: timeline(own, any),
                });
            }
        }
        let scope_slots = Slots::build(scopes.iter().map(|s| scope_hash(&s.tenant, &s.category)));
        let subject_slots =
            Slots::build(subjects.iter().map(|s| subject_hash(s.scope, &s.subject)));
        Some(SubjectTable {
            scopes: scopes.into(),
            scope_slots,
            subjects: subjects.into(),
            subject_slots,
        })
    }

    /// The event's scope and the timeline that applies to its subject (the subject's own, else
    /// `*any`'s; empty when neither has profiles).
    #[inline]
    pub(crate) fn find(
        &self,
        tenant: &str,
        category: &str,
        subject: &str,
    ) -> Option<(&Scope, &[Activation])> {
        let is = |sc: &Scope| same(&sc.category, category) && same(&sc.tenant, tenant);
        // A tariff usually has a few scopes (one tenant; calls, SMS, data): comparing them
        // costs less than hashing the two strings.
        let i = if self.scopes.len() <= LINEAR_SCOPES {
            self.scopes.iter().position(is)? as u32
        } else {
            self.scope_slots.find(scope_hash(tenant, category), |i| {
                is(&self.scopes[i as usize])
            })?
        };
        let scope = &self.scopes[i as usize];
        let own = self.subject_slots.find(subject_hash(i, subject), |k| {
            let s = &self.subjects[k as usize];
            s.scope == i && same(&s.subject, subject)
        });
        Some(match own {
            Some(k) => (scope, &*self.subjects[k as usize].timeline),
            None => (scope, &*scope.any),
        })
    }
}

/// One list in which the activation in force at any instant is the last one starting at or
/// before it: `any`'s activations until the subject's own first one starts, then its own.
fn timeline(own: Option<&[Activation]>, any: Option<&[Activation]>) -> Box<[Activation]> {
    let own = own.unwrap_or_default();
    let cutoff = own.first().map_or(i64::MAX, |a| a.at);
    any.unwrap_or_default()
        .iter()
        .filter(|a| a.at < cutoff)
        .chain(own)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn act(at: i64, plan: u32) -> Activation {
        Activation {
            at,
            plan,
            fallbacks: Box::new([]),
        }
    }

    /// The activation in force at `at` when `own` is asked before `any` (the general rule).
    fn by_priority<'a>(own: &'a [Activation], any: &'a [Activation], at: i64) -> Option<u32> {
        [own, any]
            .iter()
            .find_map(|l| l.iter().rev().find(|a| a.at <= at))
            .map(|a| a.plan)
    }

    #[test]
    fn a_timeline_answers_as_the_priority_rule_at_every_instant() {
        let own = [act(100, 1), act(300, 2)];
        let any = [act(i64::MIN, 10), act(50, 11), act(200, 12)];
        let line = timeline(Some(&own), Some(&any));
        let plans: Vec<u32> = line.iter().map(|a| a.plan).collect();
        assert_eq!(plans, [10, 11, 1, 2]);
        for at in [i64::MIN, -1, 49, 50, 99, 100, 199, 200, 299, 300, i64::MAX] {
            let merged = line.iter().rev().find(|a| a.at <= at).map(|a| a.plan);
            assert_eq!(merged, by_priority(&own, &any, at), "at {at}");
        }
        assert_eq!(by_priority(&[], &[act(10, 3)], 5), None);
        let only_any = timeline(None, Some(&any));
        assert_eq!(only_any.len(), 3);
        let only_own = timeline(Some(&own), None);
        assert_eq!(only_own.len(), 2);
    }

    /// The plan of the first activation the table finds for an event's text.
    fn first_plan(table: &SubjectTable, t: &str, c: &str, s: &str) -> Option<u32> {
        table
            .find(t, c, s)
            .and_then(|(_, line)| line.first().map(|a| a.plan))
    }

    #[test]
    fn the_table_finds_a_subject_or_its_any_and_nothing_else() {
        let strings: Vec<Box<str>> = ["t", "call", "alice", ANY, "sms"]
            .into_iter()
            .map(Box::from)
            .collect();
        let mut profiles: FxHashMap<ProfileKey, Vec<Activation>> = FxHashMap::default();
        profiles.insert((0, 1, 2, NONE), vec![act(i64::MIN, 7)]);
        profiles.insert((0, 1, 3, NONE), vec![act(i64::MIN, 8)]);
        profiles.insert((0, 4, 2, NONE), vec![act(i64::MIN, 9)]);
        let table = SubjectTable::build(&profiles, &strings, 3).expect("no carrier profiles");
        let plan = |t: &str, c: &str, s: &str| first_plan(&table, t, c, s);
        assert_eq!(plan("t", "call", "alice"), Some(7));
        assert_eq!(plan("t", "call", "bob"), Some(8));
        assert_eq!(plan("t", "call", ANY), Some(8));
        assert_eq!(plan("t", "sms", "alice"), Some(9));
        assert_eq!(plan("t", "sms", "bob"), None);
        assert_eq!(plan("u", "call", "alice"), None);
        assert_eq!(plan("tc", "all", "alice"), None);
        assert!(same("abcdefghijklmnopq", "abcdefghijklmnopq"));
        for (a, b) in [
            ("abcdefghi", "abcdefghj"),
            ("jbcdefghi", "abcdefghi"),
            ("abcde", "abcdf"),
        ] {
            assert!(!same(a, b) && same(a, a), "{a} {b}");
        }
        assert!(same("", "") && same("ab", "ab") && !same("ab", "ac") && !same("a", "ab"));
        // Beyond the scopes searched one by one, the hashed look-up answers the same.
        let mut strings = strings;
        let mut many = profiles.clone();
        for k in 0..20u32 {
            strings.push(format!("tenant{k}").into());
            many.insert((5 + k, 1, 3, NONE), vec![act(i64::MIN, 100 + k)]);
        }
        let table = SubjectTable::build(&many, &strings, 3).expect("no carrier profiles");
        assert!(table.scopes.len() > LINEAR_SCOPES);
        let plan = |t: &str, c: &str, s: &str| first_plan(&table, t, c, s);
        assert_eq!(plan("t", "call", "alice"), Some(7));
        assert_eq!(plan("tenant7", "call", "bob"), Some(107));
        assert_eq!(plan("tenant19", "call", ANY), Some(119));
        assert_eq!(plan("tenant20", "call", "bob"), None);
        assert_eq!(plan("tenant7", "sms", "bob"), None);
        profiles.insert((0, 1, 2, 4), vec![act(i64::MIN, 1)]);
        assert!(SubjectTable::build(&profiles, &strings, 3).is_none());
    }
}
