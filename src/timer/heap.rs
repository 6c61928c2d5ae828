//! The timer structure: an indexed 4-ary min-heap of pending scheduled tasks,
//! ordered by (due time, submission sequence).
//!
//! Each item learns its position in the heap through [`Slotted::set_slot`]
//! whenever it moves, so a cancelled task is removed at once in O(log n) and
//! its memory freed, instead of lingering until its due time. Equal due times
//! pop in the order they were pushed.
//!
//! This file holds no locks and reads no clock: the timer driver owns one heap
//! under its timer mutex and passes `now` in.

use crate::schedule::Nanos;

/// Slot value meaning "not in the heap".
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// Something that can sit in a [`TimerHeap`] and be told where it is.
pub(crate) trait Slotted {
    /// Records the item's current index in the heap, or [`NO_SLOT`] when it
    /// leaves. Called only by the heap's owner, under its lock.
    fn set_slot(&self, slot: u32);
}

const ARITY: usize = 4;

#[derive(Debug)]
struct Node<E> {
    due: Nanos,
    seq: u64,
    item: E,
}

impl<E> Node<E> {
    fn key(&self) -> (Nanos, u64) {
        (self.due, self.seq)
    }
}

/// The heap. See the module docs.
#[derive(Debug)]
pub(crate) struct TimerHeap<E: Slotted> {
    nodes: Vec<Node<E>>,
    next_seq: u64,
}

impl<E: Slotted> TimerHeap<E> {
    pub(crate) fn new() -> Self {
        TimerHeap { nodes: Vec::new(), next_seq: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Every item with its due time, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Nanos, &E)> {
        self.nodes.iter().map(|n| (n.due, &n.item))
    }

    /// Adds `item`, due at `due`. Returns true if it is now the earliest,
    /// which is when a sleeping timer thread must be woken to re-arm.
    ///
    /// Panics only if more than `u32::MAX - 1` items are pending.
    pub(crate) fn push(&mut self, due: Nanos, item: E) -> bool {
        let seq = self.next_seq;
        self.next_seq += 1;
        let at = self.nodes.len();
        assert!(at < NO_SLOT as usize, "timer heap is full");
        item.set_slot(at as u32);
        self.nodes.push(Node { due, seq, item });
        self.sift_up(at) == 0
    }

    /// The earliest due time, if any.
    pub(crate) fn next_due(&self) -> Option<Nanos> {
        self.nodes.first().map(|n| n.due)
    }

    /// Removes and returns the earliest item if it is due at or before `now`,
    /// with its due time.
    pub(crate) fn pop_due(&mut self, now: Nanos) -> Option<(Nanos, E)> {
        if self.next_due()? > now {
            return None;
        }
        self.remove_at(0).map(|n| (n.due, n.item))
    }

    /// Removes the item at `slot` if `is_it` confirms it is the one meant.
    /// A stale slot (the item already left) finds another item or nothing,
    /// and `is_it` turns that down.
    pub(crate) fn remove(&mut self, slot: u32, is_it: impl FnOnce(&E) -> bool) -> Option<E> {
        let at = slot as usize;
        if !is_it(&self.nodes.get(at)?.item) {
            return None;
        }
        self.remove_at(at).map(|n| n.item)
    }

    /// Removes every item, earliest first is not promised.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = E> + '_ {
        self.nodes.drain(..).map(|n| {
            n.item.set_slot(NO_SLOT);
            n.item
        })
    }

    fn remove_at(&mut self, at: usize) -> Option<Node<E>> {
        if at >= self.nodes.len() {
            return None;
        }
        let node = self.nodes.swap_remove(at);
        node.item.set_slot(NO_SLOT);
        if at < self.nodes.len() {
            self.nodes[at].item.set_slot(at as u32);
            let moved_to = self.sift_up(at);
            if moved_to == at {
                self.sift_down(at);
            }
        }
        // Give memory back after a mass cancel, keeping room to grow again.
        if self.nodes.capacity() > 64 && self.nodes.len() < self.nodes.capacity() / 4 {
            self.nodes.shrink_to(self.nodes.len() * 2);
        }
        Some(node)
    }

    /// Moves the node at `at` up to its place; returns where it ended.
    fn sift_up(&mut self, mut at: usize) -> usize {
        while at > 0 {
            let parent = (at - 1) / ARITY;
            if self.nodes[parent].key() <= self.nodes[at].key() {
                break;
            }
            self.swap(parent, at);
            at = parent;
        }
        at
    }

    fn sift_down(&mut self, mut at: usize) {
        loop {
            let first = at * ARITY + 1;
            let last = (first + ARITY).min(self.nodes.len());
            if first >= last {
                break;
            }
            let mut least = first;
            for child in first + 1..last {
                if self.nodes[child].key() < self.nodes[least].key() {
                    least = child;
                }
            }
            if self.nodes[at].key() <= self.nodes[least].key() {
                break;
            }
            self.swap(at, least);
            at = least;
        }
    }

    /// Swaps two nodes and tells both where they are now.
    fn swap(&mut self, a: usize, b: usize) {
        self.nodes.swap(a, b);
        self.nodes[a].item.set_slot(a as u32);
        self.nodes[b].item.set_slot(b as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A test item that remembers its slot, like a task cell does.
    #[derive(Debug, Clone)]
    struct Item {
        id: u32,
        slot: Rc<Cell<u32>>,
    }

    impl Slotted for Item {
        fn set_slot(&self, slot: u32) {
            self.slot.set(slot);
        }
    }

    fn item(id: u32) -> Item {
        Item { id, slot: Rc::new(Cell::new(NO_SLOT)) }
    }

    fn check_slots(heap: &TimerHeap<Item>) {
        for (i, n) in heap.nodes.iter().enumerate() {
            assert_eq!(n.item.slot.get(), i as u32, "item {} knows its slot", n.item.id);
            if i > 0 {
                assert!(heap.nodes[(i - 1) / ARITY].key() <= n.key(), "heap order");
            }
        }
    }

    /// A small deterministic generator, so the tests need no dependency.
    fn lcg(state: &mut u64) -> u64 {
        *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        *state >> 33
    }

    #[test]
    fn pops_in_due_order_only_when_due() {
        let mut heap = TimerHeap::new();
        assert!(heap.push(30, item(3)));
        assert!(heap.push(10, item(1)));
        assert!(!heap.push(20, item(2)));
        assert_eq!(heap.pop_due(9).map(|(_, i)| i.id), None);
        assert_eq!(heap.pop_due(10).map(|(d, i)| (d, i.id)), Some((10, 1)));
        assert_eq!(heap.pop_due(100).map(|(_, i)| i.id), Some(2));
        assert_eq!(heap.pop_due(100).map(|(_, i)| i.id), Some(3));
        assert!(heap.pop_due(u64::MAX).is_none());
    }

    #[test]
    fn equal_due_times_pop_in_submission_order() {
        let mut heap = TimerHeap::new();
        for id in 0..100 {
            heap.push(if id % 2 == 0 { 7 } else { 5 }, item(id));
        }
        let order: Vec<u32> = std::iter::from_fn(|| heap.pop_due(7).map(|(_, i)| i.id)).collect();
        let odds: Vec<u32> = (0..100).filter(|i| i % 2 == 1).collect();
        let evens: Vec<u32> = (0..100).filter(|i| i % 2 == 0).collect();
        assert_eq!(order, [odds, evens].concat());
    }

    #[test]
    fn remove_frees_the_item_at_once_and_keeps_order() {
        let mut heap = TimerHeap::new();
        let items: Vec<Item> = (0..500).map(item).collect();
        let mut rng = 42;
        for it in &items {
            heap.push(lcg(&mut rng) % 1000, it.clone());
        }
        check_slots(&heap);
        // Cancel every third item, through the slot it was told.
        for it in items.iter().filter(|it| it.id % 3 == 0) {
            let slot = it.slot.get();
            let got = heap.remove(slot, |e| e.id == it.id).expect("found by slot");
            assert_eq!(got.id, it.id);
            assert_eq!(it.slot.get(), NO_SLOT);
            assert_eq!(Rc::strong_count(&it.slot), 2, "heap's copy dropped with `got` only");
            check_slots(&heap);
        }
        assert_eq!(heap.len(), 500 - 167);
        let mut last = (0, 0);
        while let Some(node) = heap.nodes.first().map(Node::key) {
            assert!(node >= last);
            last = node;
            let (_, it) = heap.pop_due(u64::MAX).unwrap();
            assert_ne!(it.id % 3, 0, "removed items never pop");
            check_slots(&heap);
        }
    }

    #[test]
    fn stale_slot_is_refused() {
        let mut heap = TimerHeap::new();
        let a = item(1);
        heap.push(5, a.clone());
        let stale = a.slot.get();
        heap.pop_due(5).unwrap();
        heap.push(6, item(2));
        assert!(heap.remove(stale, |e| e.id == 1).is_none(), "slot now holds another item");
        assert!(heap.remove(NO_SLOT, |_| true).is_none());
        assert_eq!(heap.len(), 1);
    }

    #[test]
    fn random_operations_match_a_sorted_model() {
        let mut rng = 7;
        let mut heap = TimerHeap::new();
        let mut model: Vec<(Nanos, u64, Item)> = Vec::new();
        let mut seq = 0;
        for step in 0..20_000u32 {
            match lcg(&mut rng) % 3 {
                0 | 1 => {
                    let due = lcg(&mut rng) % 500;
                    let it = item(step);
                    heap.push(due, it.clone());
                    model.push((due, seq, it));
                    seq += 1;
                }
                _ if !model.is_empty() => {
                    let k = (lcg(&mut rng) as usize) % model.len();
                    let (_, _, it) = model.remove(k);
                    assert!(heap.remove(it.slot.get(), |e| e.id == it.id).is_some());
                }
                _ => {}
            }
            if step % 97 == 0 {
                let now = lcg(&mut rng) % 500;
                model.sort_by_key(|(d, s, _)| (*d, *s));
                let due_count = model.iter().take_while(|(d, _, _)| *d <= now).count();
                for (d, _, it) in model.drain(..due_count) {
                    let (hd, hit) = heap.pop_due(now).expect("model says due");
                    assert_eq!((hd, hit.id), (d, it.id));
                }
                assert!(heap.pop_due(now).is_none());
                check_slots(&heap);
            }
        }
        assert_eq!(heap.len(), model.len());
        assert_eq!(heap.drain().count(), model.len());
        assert!(model.iter().all(|(_, _, it)| it.slot.get() == NO_SLOT));
    }

    #[test]
    fn memory_is_returned_after_mass_removal() {
        let mut heap = TimerHeap::new();
        let items: Vec<Item> = (0..10_000).map(item).collect();
        for (i, it) in items.iter().enumerate() {
            heap.push(i as u64, it.clone());
        }
        for it in &items {
            heap.remove(it.slot.get(), |e| e.id == it.id).unwrap();
        }
        assert_eq!(heap.len(), 0);
        assert!(heap.nodes.capacity() <= 128, "capacity {}", heap.nodes.capacity());
    }
}
