//! SIEVE eviction (Zhang et al., "SIEVE is Simpler than LRU", NSDI '24).
//!
//! One FIFO queue of a shard's slots, newest at the head, and a *hand* that walks from the
//! tail (oldest) towards the head. A hit only sets the entry's visited bit (kept in the
//! entry itself, so a hit touches no list and takes no extra lock). To evict, the hand
//! skips visited entries, clearing their bit, and evicts the first unvisited one; entries
//! it passes stay where they are (unlike CLOCK, which moves them to the head). New entries
//! enter at the head. Every step is O(1) amortised: each bit cleared was set by one hit.
//!
//! The queue is intrusive over slot indices: [`Sieve`] holds one [`Link`] per slot of the
//! shard's slab, parallel to it, and mirrors its `push` and `swap_remove`.

/// No slot.
const NIL: u32 = u32::MAX;

/// A slot's neighbours in the queue.
#[derive(Debug, Clone, Copy)]
struct Link {
    /// Towards the tail (inserted earlier).
    older: u32,
    /// Towards the head (inserted later).
    newer: u32,
}

/// The queue and the hand over the slots `0..len` of one shard.
#[derive(Debug)]
pub struct Sieve {
    links: Vec<Link>,
    /// Newest slot.
    head: u32,
    /// Oldest slot.
    tail: u32,
    /// Where the next eviction search starts; [`NIL`]: at the tail.
    hand: u32,
}

impl Default for Sieve {
    fn default() -> Self {
        Self { links: Vec::new(), head: NIL, tail: NIL, hand: NIL }
    }
}

impl Sieve {
    /// Adds slot `len` (the slab's new last slot) at the head.
    pub fn push(&mut self) {
        let index = self.links.len() as u32;
        self.links.push(Link { older: self.head, newer: NIL });
        match self.head {
            NIL => self.tail = index,
            head => self.links[head as usize].newer = index,
        }
        self.head = index;
    }

    /// Removes slot `index`, then moves the last slot into its place, as the slab's
    /// `swap_remove(index)` does.
    pub fn swap_remove(&mut self, index: u32) {
        let Link { older, newer } = self.links[index as usize];
        if self.hand == index {
            self.hand = newer;
        }
        match older {
            NIL => self.tail = newer,
            o => self.links[o as usize].newer = newer,
        }
        match newer {
            NIL => self.head = older,
            n => self.links[n as usize].older = older,
        }
        let last = (self.links.len() - 1) as u32;
        self.links.swap_remove(index as usize);
        if index != last {
            // The old last slot now lives at `index`: point everything that named it there.
            let Link { older, newer } = self.links[index as usize];
            match older {
                NIL => self.tail = index,
                o => self.links[o as usize].newer = index,
            }
            match newer {
                NIL => self.head = index,
                n => self.links[n as usize].older = index,
            }
            if self.hand == last {
                self.hand = index;
            }
        }
    }

    /// The slot to evict: the first from the hand on whose visited bit is clear.
    /// `take_visited(slot)` returns the slot's bit and clears it. `None` when empty.
    pub fn victim(&mut self, mut take_visited: impl FnMut(u32) -> bool) -> Option<u32> {
        let mut at = if self.hand == NIL { self.tail } else { self.hand };
        if at == NIL {
            return None;
        }
        // Bounded: each step clears a bit, so after one lap every bit is clear.
        for _ in 0..=self.links.len() {
            if !take_visited(at) {
                break;
            }
            at = match self.links[at as usize].newer {
                NIL => self.tail,
                newer => newer,
            };
        }
        self.hand = self.links[at as usize].newer;
        Some(at)
    }

    /// Bytes the queue spends on each entry it holds.
    pub const BYTES_PER_ENTRY: usize = std::mem::size_of::<Link>();

    /// Heap bytes held (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        self.links.capacity() * std::mem::size_of::<Link>()
    }

    /// Gives back capacity beyond `min` links.
    pub fn shrink_to(&mut self, min: usize) {
        self.links.shrink_to(min);
    }

    /// Empties the queue and frees its memory.
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slab of (id, visited) beside its SIEVE, as a shard keeps them.
    struct Cache {
        slots: Vec<(u32, bool)>,
        sieve: Sieve,
    }

    impl Cache {
        fn insert(&mut self, id: u32) {
            self.slots.push((id, false));
            self.sieve.push();
        }
        fn evict(&mut self) -> u32 {
            let slots = &mut self.slots;
            let victim = self.sieve.victim(|i| std::mem::take(&mut slots[i as usize].1)).unwrap();
            self.sieve.swap_remove(victim);
            self.slots.swap_remove(victim as usize).0
        }
        fn hit(&mut self, id: u32) {
            if let Some(slot) = self.slots.iter_mut().find(|s| s.0 == id) {
                slot.1 = true;
            }
        }
    }

    #[test]
    fn evicts_in_sieve_order() {
        // The paper's example shape: visited entries survive in place, the hand moves on.
        let mut cache = Cache { slots: Vec::new(), sieve: Sieve::default() };
        for id in 1..=5 {
            cache.insert(id);
        }
        cache.hit(1);
        cache.hit(2);
        cache.hit(4);
        assert_eq!(cache.evict(), 3, "1 and 2 were visited: skipped, bits cleared");
        cache.insert(6);
        assert_eq!(cache.evict(), 5, "the hand continues from where it stopped");
        assert_eq!(cache.evict(), 6, "4 was visited; 6 is next towards the head");
        assert_eq!(cache.evict(), 1, "the hand wrapped to the tail; 1's bit was cleared");
        assert_eq!(cache.evict(), 2);
        assert_eq!(cache.evict(), 4);
        assert!(cache.sieve.victim(|_| false).is_none());
    }

    #[test]
    fn removal_from_the_middle_keeps_the_queue_consistent() {
        let mut cache = Cache { slots: Vec::new(), sieve: Sieve::default() };
        for id in 0..100 {
            cache.insert(id);
        }
        // Remove every third slot by position, as deletes do.
        let mut i = 0;
        while i < cache.slots.len() {
            cache.sieve.swap_remove(i as u32);
            cache.slots.swap_remove(i);
            i += 3;
        }
        let left = cache.slots.len();
        let mut evicted = Vec::new();
        for _ in 0..left {
            evicted.push(cache.evict());
        }
        let mut sorted = evicted.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), left, "every remaining entry evicted exactly once");
        assert!(evicted.windows(2).all(|w| w[0] < w[1]), "FIFO order without hits: {evicted:?}");
    }
}
