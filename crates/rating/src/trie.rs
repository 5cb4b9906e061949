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

    proptest::proptest! {
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
            let got = frozen.longest(number.as_bytes());
            proptest::prop_assert_eq!(got.map(|(l, _)| l), want);
            if let (Some((l, v)), Some((l2, v2))) = (got, idx.longest(number.as_bytes())) {
                proptest::prop_assert_eq!((l, v), (l2, *v2));
            }
        }
    }
}
