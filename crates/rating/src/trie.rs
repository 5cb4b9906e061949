//! A prefix trie over dialled numbers: longest-prefix lookups in time proportional to the
//! number's length, independent of how many prefixes the tariff has.
//!
//! Digits, the overwhelming majority of edges, sit in a fixed array per node; anything else
//! (`+`, `*`, letters of SIP users such as `voicemail`) goes through a side map. Nodes live in
//! one `Vec` and refer to each other by index, so a 200,000-prefix tariff is a handful of large
//! allocations rather than a million small ones.

use rustc_hash::FxHashMap;

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Node {
    digits: [u32; 10],
    value: u32,
}

impl Node {
    const EMPTY: Node = Node {
        digits: [NONE; 10],
        value: NONE,
    };
}

/// Maps prefixes to values of type `V`.
#[derive(Debug, Clone)]
pub struct PrefixTrie<V> {
    nodes: Vec<Node>,
    other: FxHashMap<(u32, u8), u32>,
    values: Vec<V>,
}

impl<V> Default for PrefixTrie<V> {
    fn default() -> Self {
        PrefixTrie {
            nodes: vec![Node::EMPTY],
            other: FxHashMap::default(),
            values: Vec::new(),
        }
    }
}

/// Up to this many matches are reported by [`PrefixTrie::matches`]; numbers are at most 32 bytes.
pub const MAX_MATCHES: usize = 33;

impl<V> PrefixTrie<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Number of trie nodes (for memory estimates).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    fn child(&self, node: u32, b: u8) -> u32 {
        if b.is_ascii_digit() {
            self.nodes[node as usize].digits[usize::from(b - b'0')]
        } else {
            self.other.get(&(node, b)).copied().unwrap_or(NONE)
        }
    }

    /// The value at `prefix`, created with `make` if absent.
    pub fn entry(&mut self, prefix: &[u8], make: impl FnOnce() -> V) -> &mut V {
        let mut node = 0u32;
        for &b in prefix {
            let next = self.child(node, b);
            node = if next == NONE {
                let id = self.nodes.len() as u32;
                self.nodes.push(Node::EMPTY);
                if b.is_ascii_digit() {
                    self.nodes[node as usize].digits[usize::from(b - b'0')] = id;
                } else {
                    self.other.insert((node, b), id);
                }
                id
            } else {
                next
            };
        }
        let slot = self.nodes[node as usize].value;
        let idx = if slot == NONE {
            let idx = self.values.len() as u32;
            self.values.push(make());
            self.nodes[node as usize].value = idx;
            idx
        } else {
            slot
        };
        &mut self.values[idx as usize]
    }

    /// Calls `f(prefix, value)` for every prefix with a value (depth first).
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &V)) {
        let mut path: Vec<u8> = Vec::new();
        // (node, byte that led to it, depth)
        let mut stack: Vec<(u32, u8, usize)> = vec![(0, 0, 0)];
        let mut by_parent: FxHashMap<u32, Vec<(u8, u32)>> = FxHashMap::default();
        for (&(p, b), &c) in &self.other {
            by_parent.entry(p).or_default().push((b, c));
        }
        while let Some((node, b, depth)) = stack.pop() {
            path.truncate(depth.saturating_sub(1));
            if depth > 0 {
                path.push(b);
            }
            let n = &self.nodes[node as usize];
            if n.value != NONE {
                f(&path, &self.values[n.value as usize]);
            }
            for (d, &c) in n.digits.iter().enumerate() {
                if c != NONE {
                    stack.push((c, b'0' + d as u8, depth + 1));
                }
            }
            if let Some(list) = by_parent.get(&node) {
                for &(b, c) in list {
                    stack.push((c, b, depth + 1));
                }
            }
        }
    }

    /// The same trie with every value mapped.
    pub fn map_values<U>(self, f: impl FnMut(V) -> U) -> PrefixTrie<U> {
        PrefixTrie {
            nodes: self.nodes,
            other: self.other,
            values: self.values.into_iter().map(f).collect(),
        }
    }

    /// The value of the longest prefix of `number`, with the prefix length.
    pub fn longest(&self, number: &[u8]) -> Option<(usize, &V)> {
        let mut best = None;
        self.walk(number, |len, v| {
            best = Some((len, v));
        });
        best
    }

    /// Calls `f(prefix_len, value)` for every prefix of `number` present, shortest first.
    pub fn walk<'a>(&'a self, number: &[u8], mut f: impl FnMut(usize, &'a V)) {
        let mut node = 0u32;
        let root = self.nodes[0].value;
        if root != NONE {
            f(0, &self.values[root as usize]);
        }
        for (i, &b) in number.iter().enumerate() {
            node = self.child(node, b);
            if node == NONE {
                return;
            }
            let v = self.nodes[node as usize].value;
            if v != NONE {
                f(i + 1, &self.values[v as usize]);
            }
        }
    }
}

/// A read-only prefix trie laid out for look-ups: nodes in breadth-first order, 12 bytes each,
/// the digit children of a node adjacent and found with a popcount, values (`u32`) inline.
/// The top levels, which every look-up visits, share a few cache lines; a 50,000-prefix tariff
/// fits in a few megabytes instead of tens.
#[derive(Debug, Clone, Default)]
pub struct FrozenTrie {
    nodes: Vec<FrozenNode>,
    other: FxHashMap<(u32, u8), u32>,
}

#[derive(Debug, Clone, Copy)]
struct FrozenNode {
    /// Index of the first digit child.
    first: u32,
    /// The node's value, or `NONE`.
    value: u32,
    /// Bit d set when digit d has a child.
    mask: u16,
}

impl FrozenTrie {
    /// Freezes a trie whose values are `u32` (typically indices into a table of the caller's).
    pub fn freeze(trie: &PrefixTrie<u32>) -> FrozenTrie {
        let mut nodes = Vec::with_capacity(trie.nodes.len());
        let mut other = FxHashMap::default();
        let mut new_of_old: Vec<u32> = vec![NONE; trie.nodes.len()];
        // Layout: each node's digit children form one block; blocks are placed depth first,
        // so a subtree (the last digits of a number) sits in a few adjacent cache lines.
        let value_of = |old: usize| {
            let v = trie.nodes[old].value;
            if v == NONE {
                NONE
            } else {
                trie.values[v as usize]
            }
        };
        nodes.push(FrozenNode {
            first: 0,
            value: value_of(0),
            mask: 0,
        });
        new_of_old[0] = 0;
        // Stack of old nodes whose children block is still to be placed.
        let mut stack: Vec<u32> = vec![0];
        while let Some(old) = stack.pop() {
            let n = &trie.nodes[old as usize];
            let me = new_of_old[old as usize] as usize;
            let first = nodes.len() as u32;
            let mut mask = 0u16;
            for (d, &c) in n.digits.iter().enumerate() {
                if c != NONE {
                    mask |= 1 << d;
                    new_of_old[c as usize] = nodes.len() as u32;
                    nodes.push(FrozenNode {
                        first: 0,
                        value: value_of(c as usize),
                        mask: 0,
                    });
                }
            }
            nodes[me].first = first;
            nodes[me].mask = mask;
            // Push in reverse so the lowest digit's subtree is placed right after this block.
            for &c in n.digits.iter().rev() {
                if c != NONE {
                    stack.push(c);
                }
            }
        }
        // Non-digit edges may lead to subtrees not reached above: append them too.
        let mut pending: Vec<(u32, u8, u32)> =
            trie.other.iter().map(|(&(p, b), &c)| (p, b, c)).collect();
        pending.sort_unstable();
        while !pending.is_empty() {
            let mut rest = Vec::new();
            for (p, b, c) in pending {
                let parent = new_of_old[p as usize];
                if parent == NONE {
                    rest.push((p, b, c));
                    continue;
                }
                let new_c = Self::append_subtree(trie, c, &mut nodes, &mut new_of_old);
                other.insert((parent, b), new_c);
            }
            if rest.len() == trie.other.len() {
                break; // unreachable edges; cannot happen for a well-formed trie
            }
            pending = rest;
        }
        FrozenTrie { nodes, other }
    }

    fn append_subtree(
        trie: &PrefixTrie<u32>,
        root: u32,
        nodes: &mut Vec<FrozenNode>,
        new_of_old: &mut [u32],
    ) -> u32 {
        if new_of_old[root as usize] != NONE {
            return new_of_old[root as usize];
        }
        let start = nodes.len() as u32;
        let mut order = vec![root];
        new_of_old[root as usize] = start;
        let mut head = 0;
        while head < order.len() {
            let old = order[head] as usize;
            head += 1;
            let n = &trie.nodes[old];
            let mut mask = 0u16;
            let first = start + order.len() as u32;
            for (d, &c) in n.digits.iter().enumerate() {
                if c != NONE {
                    mask |= 1 << d;
                    new_of_old[c as usize] = start + order.len() as u32;
                    order.push(c);
                }
            }
            let value = if n.value == NONE {
                NONE
            } else {
                trie.values[n.value as usize]
            };
            nodes.push(FrozenNode { first, value, mask });
        }
        start
    }

    #[inline]
    fn child(&self, node: u32, b: u8) -> u32 {
        if b.is_ascii_digit() {
            let n = &self.nodes[node as usize];
            let bit = 1u16 << (b - b'0');
            if n.mask & bit == 0 {
                return NONE;
            }
            n.first + (n.mask & (bit - 1)).count_ones()
        } else if self.other.is_empty() {
            NONE
        } else {
            self.other.get(&(node, b)).copied().unwrap_or(NONE)
        }
    }

    /// All prefixes of `number` present, shortest first, as (length, value); returns how many.
    #[inline]
    pub fn matches(
        &self,
        number: &[u8],
        lens: &mut [u8; MAX_MATCHES],
        values: &mut [u32; MAX_MATCHES],
    ) -> usize {
        let mut n = 0;
        if self.nodes.is_empty() {
            return 0;
        }
        let mut node = 0u32;
        let root = self.nodes[0].value;
        if root != NONE {
            lens[0] = 0;
            values[0] = root;
            n = 1;
        }
        for (i, &b) in number.iter().enumerate().take(MAX_MATCHES - 1) {
            node = self.child(node, b);
            if node == NONE {
                break;
            }
            let here = self.nodes[node as usize];
            if here.value != NONE && n < MAX_MATCHES {
                lens[n] = (i + 1) as u8;
                values[n] = here.value;
                n += 1;
            }
            if here.mask == 0 && self.other.is_empty() {
                break; // a leaf: nothing longer can match
            }
        }
        n
    }

    /// The value of the longest prefix of `number`, with the prefix length.
    pub fn longest(&self, number: &[u8]) -> Option<(usize, u32)> {
        let mut lens = [0u8; MAX_MATCHES];
        let mut values = [0u32; MAX_MATCHES];
        let n = self.matches(number, &mut lens, &mut values);
        (n > 0).then(|| (usize::from(lens[n - 1]), values[n - 1]))
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

/// Longest prefix of digits a [`PrefixIndex`] holds: 17 digits and the length fit in a `u64` key.
pub const MAX_HASHED_LEN: usize = 17;

/// The prefixes of a [`FrozenTrie`] as hashed (length, digits) keys, for tariffs whose prefixes
/// are all digits. A trie walk is a chain of dependent loads, one per digit, over a table of
/// megabytes; here each length that some prefix has is one independent probe of a cache line,
/// so the probes of a number are in flight at the same time.
#[derive(Debug, Clone)]
pub struct PrefixIndex {
    /// Bit `l` set when some prefix has `l` digits.
    lens: u32,
    /// The same for the prefixes that can match a number starting with two given digits
    /// (index `10 × d0 + d1`): fewer probes, fewer cache lines.
    head_lens: Box<[u32]>,
    /// Longest prefix length.
    max_len: usize,
    buckets: Box<[Bucket]>,
    mask: usize,
    /// Per first [`HEAD_DIGITS`] digits: the longest prefix of at most that many digits, and
    /// whether longer prefixes start with them. Most look-ups end here (the number-range table's
    /// prefixes are mostly 3 or 4 digits).
    heads: Box<[Head]>,
}

/// Digits a [`Head`] covers: 10,000 heads, 80 KB.
const HEAD_DIGITS: usize = 4;

#[derive(Debug, Clone, Copy)]
struct Head {
    /// Value of the longest prefix of at most [`HEAD_DIGITS`] digits, `NONE` if none.
    value: u32,
    len: u8,
    /// Some prefix longer than [`HEAD_DIGITS`] digits starts with this head.
    longer: bool,
}

const BUCKET: usize = 5;

/// One cache line of keys (`length << 59 | digits`, 0 = empty) and their values.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(64))]
struct Bucket {
    keys: [u64; BUCKET],
    values: [u32; BUCKET],
    /// A key that hashes here was placed in a following bucket.
    overflow: bool,
}

impl PrefixIndex {
    /// The index of every prefix of `trie`, or `None` if one is not 1 to
    /// [`MAX_HASHED_LEN`] ASCII digits (the caller keeps walking the trie then).
    pub fn build(trie: &PrefixTrie<u32>) -> Option<PrefixIndex> {
        let mut entries: Vec<(u64, u32)> = Vec::with_capacity(trie.len());
        let mut ok = true;
        trie.for_each(|prefix, &v| match Self::key_of(prefix) {
            Some(k) if !prefix.is_empty() => entries.push((k, v)),
            _ => ok = false,
        });
        if !ok {
            return None;
        }
        let n_buckets = (entries.len() / 4 + 1).next_power_of_two();
        let mut idx = PrefixIndex {
            lens: 0,
            head_lens: vec![0u32; 100].into(),
            max_len: 0,
            buckets: vec![Bucket::default(); n_buckets].into(),
            mask: n_buckets - 1,
            heads: vec![
                Head {
                    value: NONE,
                    len: 0,
                    longer: false
                };
                10usize.pow(HEAD_DIGITS as u32)
            ]
            .into(),
        };
        for (key, value) in entries {
            let len = (key >> 59) as usize;
            idx.lens |= 1 << len;
            // `key` holds the digits as a number: its first one or two digits are the head.
            let digits = key & ((1 << 59) - 1);
            if len == 1 {
                for h in 0..10 {
                    idx.head_lens[digits as usize * 10 + h] |= 1 << len;
                }
            } else {
                let head = digits / 10u64.pow(len as u32 - 2);
                idx.head_lens[head as usize] |= 1 << len;
            }
            idx.max_len = idx.max_len.max(len);
            if len > HEAD_DIGITS {
                let head = digits / 10u64.pow((len - HEAD_DIGITS) as u32);
                idx.heads[head as usize].longer = true;
            } else {
                // Every head this prefix begins: a block of 10^(HEAD_DIGITS - len).
                let width = 10usize.pow((HEAD_DIGITS - len) as u32);
                let first = digits as usize * width;
                for h in &mut idx.heads[first..first + width] {
                    if h.value == NONE || usize::from(h.len) < len {
                        (h.value, h.len) = (value, len as u8);
                    }
                }
            }
            let mut i = idx.slot(key);
            loop {
                let b = &mut idx.buckets[i];
                if let Some(k) = b.keys.iter().position(|&k| k == 0) {
                    b.keys[k] = key;
                    b.values[k] = value;
                    break;
                }
                b.overflow = true;
                i = (i + 1) & idx.mask;
            }
        }
        Some(idx)
    }

    fn key_of(prefix: &[u8]) -> Option<u64> {
        if prefix.len() > MAX_HASHED_LEN {
            return None;
        }
        let mut v = 0u64;
        for &b in prefix {
            if !b.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u64::from(b - b'0');
        }
        Some((prefix.len() as u64) << 59 | v)
    }

    #[inline]
    fn slot(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & self.mask
    }

    #[inline]
    fn get(&self, key: u64) -> Option<u32> {
        let mut i = self.slot(key);
        loop {
            let b = &self.buckets[i];
            if let Some(k) = b.keys.iter().position(|&k| k == key) {
                return Some(b.values[k]);
            }
            if !b.overflow {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Same answer as [`FrozenTrie::matches`] on the trie the index was built from.
    #[inline]
    pub fn matches(
        &self,
        number: &[u8],
        lens: &mut [u8; MAX_MATCHES],
        values: &mut [u32; MAX_MATCHES],
    ) -> usize {
        let mut n = 0;
        self.each_match(number, |len, value| {
            lens[n] = len as u8;
            values[n] = value;
            n += 1;
        });
        n
    }

    /// The value of the longest prefix of `number`, with the prefix length. Probes the
    /// candidate lengths longest first and stops at the first present (usually one probe).
    #[inline]
    pub fn longest(&self, number: &[u8]) -> Option<(usize, u32)> {
        let mut short = None;
        if let Some(head) = number.first_chunk::<HEAD_DIGITS>()
            && let Some(h) = head_number(head)
        {
            let h = self.heads[h];
            short = (h.value != NONE).then_some((usize::from(h.len), h.value));
            if !h.longer {
                return short;
            }
        }
        self.longest_probing(number).or(short)
    }

    /// [`PrefixIndex::longest`] by probing every candidate length, longest first.
    #[inline]
    fn longest_probing(&self, number: &[u8]) -> Option<(usize, u32)> {
        let mut mask = self.lens_for(number);
        let head = number.get(..self.max_len).unwrap_or(number);
        // values[len] = the first `len` digits as a number.
        let mut values = [0u64; MAX_HASHED_LEN + 1];
        let mut v = 0u64;
        let mut digits = 0;
        for (i, &b) in head.iter().enumerate() {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                break; // every prefix is digits: nothing longer can match
            }
            v = v * 10 + u64::from(d);
            values[i + 1] = v;
            digits = i + 1;
        }
        // Lengths 1..=digits only (`digits` ≤ `MAX_HASHED_LEN` < 31).
        mask &= (2u32 << digits) - 2;
        while mask != 0 {
            let len = (31 - mask.leading_zeros()) as usize;
            if let Some(value) = self.get((len as u64) << 59 | values[len]) {
                return Some((len, value));
            }
            mask &= !(1 << len);
        }
        None
    }

    /// The prefix lengths present that `number` may match, as a bit set (bit `len`).
    #[inline]
    fn lens_for(&self, number: &[u8]) -> u32 {
        match number {
            [a @ b'0'..=b'9', b @ b'0'..=b'9', ..] => {
                self.head_lens[usize::from(a - b'0') * 10 + usize::from(b - b'0')]
            }
            _ => self.lens,
        }
    }

    /// Calls `f(prefix_len, value)` for every prefix of `number` present, shortest first.
    #[inline]
    fn each_match(&self, number: &[u8], mut f: impl FnMut(usize, u32)) {
        let mut mask = self.lens_for(number);
        if mask == 0 {
            return;
        }
        // Digits past the longest candidate length are never looked at.
        let top = (31 - mask.leading_zeros()) as usize;
        let head = number.get(..top).unwrap_or(number);
        // values[len] = the first `len` digits as a number (`top` ≤ `MAX_HASHED_LEN`).
        let mut values = [0u64; MAX_HASHED_LEN + 1];
        let mut v = 0u64;
        let mut digits = 0;
        for (i, &b) in head.iter().enumerate() {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                break; // every prefix is digits: nothing longer can match
            }
            v = v * 10 + u64::from(d);
            values[i + 1] = v;
            digits = i + 1;
        }
        // Lengths 1..=digits only (`digits` ≤ `MAX_HASHED_LEN` < 31).
        mask &= (2u32 << digits) - 2;
        let key = |len: usize| (len as u64) << 59 | values[len];
        // Every candidate's bucket load first (the buckets are megabytes of random cache
        // lines): the misses overlap instead of each waiting behind the data-dependent compare
        // of the length before it.
        let mut warm = 0u64;
        let mut m = mask;
        while m != 0 {
            let len = m.trailing_zeros() as usize;
            m &= m - 1;
            warm ^= self.buckets[self.slot(key(len))].keys[0];
        }
        // Then the compares, shortest first.
        let mut m = mask;
        while m != 0 {
            let len = m.trailing_zeros() as usize;
            m &= m - 1;
            if let Some(value) = self.get(key(len)) {
                f(len, value);
            }
        }
        // Keeps the early loads: without a use the compiler would drop them.
        std::hint::black_box(warm);
    }
}

/// The first [`HEAD_DIGITS`] digits as a number, if they are all digits.
#[inline]
fn head_number(head: &[u8; HEAD_DIGITS]) -> Option<usize> {
    let mut v = 0usize;
    for &b in head {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + usize::from(d);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        let mut t: PrefixTrie<&str> = PrefixTrie::new();
        *t.entry(b"0723", || "") = "RET";
        *t.entry(b"0723045", || "") = "SPEC";
        *t.entry(b"+49", || "") = "DE";
        *t.entry(b"voicemail", || "") = "VM";
        assert_eq!(t.longest(b"0723045123"), Some((7, &"SPEC")));
        assert_eq!(t.longest(b"0723123"), Some((4, &"RET")));
        assert_eq!(t.longest(b"+4930"), Some((3, &"DE")));
        assert_eq!(t.longest(b"voicemail"), Some((9, &"VM")));
        assert_eq!(t.longest(b"0724"), None);
        assert_eq!(t.longest(b""), None);
        assert_eq!(t.len(), 4);
    }

    /// The trie and the hashed index of digit-only `prefixes` (value = position).
    fn both_indexes(
        prefixes: &[String],
    ) -> Result<(FrozenTrie, PrefixIndex), proptest::test_runner::TestCaseError> {
        let mut idx: PrefixTrie<u32> = PrefixTrie::new();
        for (i, p) in prefixes.iter().enumerate() {
            let _ = idx.entry(p.as_bytes(), || i as u32);
        }
        let hashed = PrefixIndex::build(&idx).ok_or_else(|| {
            proptest::test_runner::TestCaseError::fail("digits-only prefixes are indexed")
        })?;
        Ok((FrozenTrie::freeze(&idx), hashed))
    }

    proptest::proptest! {
        #[test]
        fn hashed_index_agrees_with_trie(prefixes in proptest::collection::vec("[0-9]{1,9}", 1..60), number in "[0-9]{0,14}[+a]?[0-9]{0,3}") {
            let (frozen, hashed) = both_indexes(&prefixes)?;
            let (mut l1, mut v1) = ([0u8; MAX_MATCHES], [0u32; MAX_MATCHES]);
            let (mut l2, mut v2) = ([0u8; MAX_MATCHES], [0u32; MAX_MATCHES]);
            let n1 = frozen.matches(number.as_bytes(), &mut l1, &mut v1);
            let n2 = hashed.matches(number.as_bytes(), &mut l2, &mut v2);
            proptest::prop_assert_eq!((&l1[..n1], &v1[..n1]), (&l2[..n2], &v2[..n2]));
            proptest::prop_assert_eq!(frozen.longest(number.as_bytes()), hashed.longest(number.as_bytes()));
        }

        #[test]
        fn hashed_longest_agrees_with_trie_on_numbers_under_prefixes(prefixes in proptest::collection::vec("[0-9]{1,7}", 1..60), pick in 0usize..60, suffix in "[0-9]{0,8}") {
            let (frozen, hashed) = both_indexes(&prefixes)?;
            let number = format!("{}{suffix}", prefixes[pick % prefixes.len()]);
            proptest::prop_assert_eq!(frozen.longest(number.as_bytes()), hashed.longest(number.as_bytes()));
        }

        #[test]
        fn agrees_with_linear_scan(prefixes in proptest::collection::vec("[0-9+*a]{1,6}", 1..40), number in "[0-9+*a]{0,10}") {
            let mut t: PrefixTrie<usize> = PrefixTrie::new();
            for (i, p) in prefixes.iter().enumerate() {
                let v = t.entry(p.as_bytes(), || i);
                let _ = v;
            }
            let want = prefixes.iter().filter(|p| number.starts_with(p.as_str())).map(|p| p.len()).max();
            proptest::prop_assert_eq!(t.longest(number.as_bytes()).map(|(l, _)| l), want);
            let mut idx: PrefixTrie<u32> = PrefixTrie::new();
            for (i, p) in prefixes.iter().enumerate() {
                let v = idx.entry(p.as_bytes(), || i as u32);
                let _ = v;
            }
            let frozen = FrozenTrie::freeze(&idx);
            if let Some(hashed) = PrefixIndex::build(&idx) {
                let (mut l1, mut v1) = ([0u8; MAX_MATCHES], [0u32; MAX_MATCHES]);
                let (mut l2, mut v2) = ([0u8; MAX_MATCHES], [0u32; MAX_MATCHES]);
                let n1 = frozen.matches(number.as_bytes(), &mut l1, &mut v1);
                let n2 = hashed.matches(number.as_bytes(), &mut l2, &mut v2);
                proptest::prop_assert_eq!((&l1[..n1], &v1[..n1]), (&l2[..n2], &v2[..n2]));
                proptest::prop_assert_eq!(frozen.longest(number.as_bytes()), hashed.longest(number.as_bytes()));
            }
            let got = frozen.longest(number.as_bytes());
            proptest::prop_assert_eq!(got.map(|(l, _)| l), want);
            if let (Some((l, v)), Some((l2, v2))) = (got, idx.longest(number.as_bytes())) {
                proptest::prop_assert_eq!((l, v), (l2, *v2));
            }
        }
    }
}
