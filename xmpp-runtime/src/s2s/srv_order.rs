//! RFC 2782 ordering of SRV records: ascending priority, and within one
//! priority a weighted random order.
//!
//! The randomness comes in as a seed (or, for tests, as the draws
//! themselves), never from a global generator, so an ordering can be
//! reproduced exactly: the runtime passes a fresh seed per resolution, a
//! test passes a fixed one. Nameservers rotate the records of an answer,
//! so [`order`] first puts them in a canonical order and shuffles each
//! priority with the seed: the result depends on the record set and the
//! seed only, and records of weight 0 still share the load.

/// One SRV record as far as connecting is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// Lower is tried first.
    pub priority: u16,
    /// Share of the connections among records of the same priority.
    pub weight: u16,
    /// TCP port on the target.
    pub port: u16,
    /// Host name to look up (lower case, no trailing dot).
    pub target: String,
    /// From `_xmpps-server` (XEP-0368: TLS from the first byte) rather
    /// than `_xmpp-server` (STARTTLS).
    pub direct_tls: bool,
}

/// Order `records` as RFC 2782 says, the weighted draws taken from a
/// generator seeded with `seed`.
pub fn order(mut records: Vec<SrvRecord>, seed: u64) -> Vec<SrvRecord> {
    let mut rng = SplitMix64(seed);
    canonical_sort(&mut records);
    // Fisher-Yates within each priority.
    let mut start = 0;
    while start < records.len() {
        let priority = records[start].priority;
        let end = records[start..]
            .iter()
            .position(|r| r.priority != priority)
            .map_or(records.len(), |n| start + n);
        for i in (start + 1..end).rev() {
            let j = start + (rng.next() % ((i - start + 1) as u64)) as usize;
            records.swap(i, j);
        }
        start = end;
    }
    order_by(records, |sum| {
        // Uniform in 0..=sum; the modulo bias is below 2^-40 for any sum an
        // SRV set can reach (65535 × the record budget).
        (rng.next() % (u64::from(sum) + 1)) as u32
    })
}

/// Sort by priority, then by target, port, service and weight: the order
/// an answer's rotation cannot change, and the one in which a budget keeps
/// the most preferred records.
pub fn canonical_sort(records: &mut [SrvRecord]) {
    records.sort_by(|a, b| {
        (a.priority, &a.target, a.port, a.direct_tls, a.weight).cmp(&(
            b.priority,
            &b.target,
            b.port,
            b.direct_tls,
            b.weight,
        ))
    });
}

/// Order `records` as RFC 2782 says, `draw(sum)` returning the random
/// number in `0..=sum` for each weighted selection.
///
/// Records are grouped by ascending priority. Within a group, the records
/// not yet placed are listed with those of weight 0 first (otherwise in
/// the order given), each gets the running sum of the weights so far, and
/// the first whose running sum is at least the draw moves to the output.
/// A draw beyond `sum` is clamped, so a faulty `draw` still terminates.
pub fn order_by(mut records: Vec<SrvRecord>, mut draw: impl FnMut(u32) -> u32) -> Vec<SrvRecord> {
    // Stable: equal priorities keep the order the answer gave them.
    records.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(records.len());
    let mut rest = records.as_slice();
    while let Some(first) = rest.first() {
        let end = rest
            .iter()
            .position(|r| r.priority != first.priority)
            .unwrap_or(rest.len());
        let (group, tail) = rest.split_at(end);
        rest = tail;
        let mut pending: Vec<&SrvRecord> = group.iter().filter(|r| r.weight == 0).collect();
        pending.extend(group.iter().filter(|r| r.weight != 0));
        while !pending.is_empty() {
            let sum: u32 = pending.iter().map(|r| u32::from(r.weight)).sum();
            let pick = draw(sum).min(sum);
            let mut running = 0u32;
            let at = pending
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= pick
                })
                .unwrap_or(pending.len() - 1);
            out.push(pending.remove(at).clone());
        }
    }
    out
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, well-mixed generator,
/// plenty for spreading load over SRV targets (nothing secret depends on
/// it).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(priority: u16, weight: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port: 5269,
            target: target.into(),
            direct_tls: false,
        }
    }

    fn targets(records: &[SrvRecord]) -> Vec<&str> {
        records.iter().map(|r| r.target.as_str()).collect()
    }

    #[test]
    fn priority_first_then_the_draw_picks_by_running_sum() {
        let records = vec![
            rec(20, 0, "late"),
            rec(10, 30, "b"),
            rec(10, 0, "zero"),
            rec(10, 10, "a"),
        ];
        // Priority 10, weight 0 first: zero(0) b(30) a(40). Draw 0 picks
        // `zero`; then b(30) a(40), draw 31 picks `a`; then `b`.
        let mut draws = vec![0, 31, 0, 0].into_iter();
        let sums = std::cell::RefCell::new(Vec::new());
        let out = order_by(records, |sum| {
            sums.borrow_mut().push(sum);
            draws.next().unwrap_or(0)
        });
        assert_eq!(targets(&out), ["zero", "a", "b", "late"]);
        assert_eq!(*sums.borrow(), [40, 40, 30, 0]);
    }

    #[test]
    fn a_draw_equal_to_a_running_sum_picks_that_record() {
        let records = vec![rec(0, 10, "a"), rec(0, 20, "b")];
        let out = order_by(records.clone(), |_| 10);
        assert_eq!(targets(&out), ["a", "b"]);
        let out = order_by(records, |_| 11);
        assert_eq!(targets(&out), ["b", "a"]);
    }

    #[test]
    fn an_out_of_range_draw_is_clamped() {
        let records = vec![rec(0, 1, "a"), rec(0, 1, "b")];
        let out = order_by(records, |_| u32::MAX);
        assert_eq!(targets(&out), ["b", "a"]);
    }

    #[test]
    fn without_a_seed_all_zero_weights_keep_the_given_order() {
        let records = vec![rec(5, 0, "x"), rec(5, 0, "y"), rec(5, 0, "z")];
        assert_eq!(targets(&order_by(records, |_| 0)), ["x", "y", "z"]);
    }

    #[test]
    fn the_answer_order_does_not_matter_and_zero_weights_share_the_load() {
        let records = vec![
            rec(5, 0, "x"),
            rec(5, 0, "y"),
            rec(5, 0, "z"),
            rec(1, 0, "p"),
        ];
        let mut rotated = records.clone();
        rotated.rotate_left(2);
        let mut firsts = std::collections::BTreeSet::new();
        for seed in 0..50 {
            let a = order(records.clone(), seed);
            assert_eq!(a, order(rotated.clone(), seed));
            assert_eq!(a[0].target, "p", "priority first");
            firsts.insert(a[1].target.clone());
        }
        assert_eq!(
            firsts.len(),
            3,
            "each weight-0 record comes first sometimes"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_order() {
        let records: Vec<_> = (0..8).map(|i| rec(1, 10 + i, &format!("t{i}"))).collect();
        assert_eq!(order(records.clone(), 42), order(records.clone(), 42));
        let distinct: std::collections::BTreeSet<Vec<String>> = (0..64)
            .map(|seed| {
                order(records.clone(), seed)
                    .into_iter()
                    .map(|r| r.target)
                    .collect()
            })
            .collect();
        assert!(distinct.len() > 16, "seeds should vary the order");
    }

    #[test]
    fn first_choices_follow_the_weights() {
        let records = vec![rec(0, 10, "a"), rec(0, 20, "b"), rec(0, 70, "c")];
        let mut first = std::collections::BTreeMap::new();
        let runs = 20_000u64;
        for seed in 0..runs {
            let out = order(records.clone(), seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
            *first.entry(out[0].target.clone()).or_insert(0u64) += 1;
        }
        for (target, weight) in [("a", 10u64), ("b", 20), ("c", 70)] {
            let got = first.get(target).copied().unwrap_or(0);
            let want = runs * weight / 100;
            let tolerance = runs / 50;
            assert!(
                got.abs_diff(want) < tolerance,
                "{target}: {got} first picks, expected about {want}"
            );
        }
    }
}
