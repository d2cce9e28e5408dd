//! Log-scale latency buckets and the aggregate they feed.
//!
//! Exact percentiles need every matching latency sorted, which over a million rows costs hundreds of
//! milliseconds in either database. Instead each row stores the index of its latency bucket, and the
//! rollup tables keep one counter per bucket: a percentile is then a walk over 64 counts. Bucket `i`
//! covers `[RATIO^i, RATIO^(i+1))` milliseconds (bucket 0 also takes everything below 1.25 ms; the last
//! one everything from about 26 minutes up), so an estimate is always inside the same bucket as the exact
//! nearest-rank value: off by less than a factor of [`LATENCY_BUCKET_RATIO`] (25 %), and usually far less
//! because the estimate interpolates within the bucket.

/// Number of latency buckets; the migrations have one `lbNN` column per bucket.
pub const LATENCY_BUCKETS: usize = 64;

/// Ratio between a bucket's upper and lower bound: the worst-case relative error of a percentile.
pub const LATENCY_BUCKET_RATIO: f64 = 1.25;

/// The bucket a latency falls into. Non-finite or negative values land in bucket 0 rather than failing
/// the insert: a caller's bad timing must not lose the rest of a batch.
pub fn latency_bucket(latency_ms: f64) -> usize {
    if latency_ms.is_nan() || latency_ms < LATENCY_BUCKET_RATIO {
        return 0;
    }
    let i = (latency_ms.ln() / LATENCY_BUCKET_RATIO.ln()).floor();
    if i >= (LATENCY_BUCKETS - 1) as f64 {
        LATENCY_BUCKETS - 1
    } else {
        i as usize
    }
}

/// Lower bound of bucket `i` in milliseconds (0 for bucket 0).
fn bucket_lower(i: usize) -> f64 {
    if i == 0 {
        0.0
    } else {
        LATENCY_BUCKET_RATIO.powi(i as i32)
    }
}

/// Sums over a set of log rows, however they were read (raw rows or rollup counters). Everything in
/// the stats and histogram answers is derived from this.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Agg {
    pub requests: i64,
    pub errors: i64,
    pub latency_sum_ms: f64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
    pub unknown_cost: i64,
    pub buckets: [i64; LATENCY_BUCKETS],
}

impl Default for Agg {
    fn default() -> Self {
        Agg {
            requests: 0,
            errors: 0,
            latency_sum_ms: 0.0,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
            unknown_cost: 0,
            buckets: [0; LATENCY_BUCKETS],
        }
    }
}

impl Agg {
    pub fn merge(&mut self, other: &Agg) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.latency_sum_ms += other.latency_sum_ms;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cost_usd += other.cost_usd;
        self.unknown_cost += other.unknown_cost;
        for (a, b) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *a += b;
        }
    }

    /// Nearest-rank percentile (`q` in 0..=1) estimated from the bucket counts: the bucket holding the
    /// rank is found exactly, and the value is interpolated log-uniformly inside it. 0 when empty.
    pub fn percentile(&self, q: f64) -> f64 {
        let n: i64 = self.buckets.iter().sum();
        if n <= 0 {
            return 0.0;
        }
        let rank = ((q * n as f64).ceil() as i64).clamp(1, n);
        let mut before = 0i64;
        for (i, &count) in self.buckets.iter().enumerate() {
            if count <= 0 {
                continue;
            }
            if before + count >= rank {
                // Position of the rank inside this bucket, as the middle of its slot in (0, 1).
                let within = ((rank - before) as f64 - 0.5) / count as f64;
                return if i == 0 {
                    LATENCY_BUCKET_RATIO * within
                } else {
                    bucket_lower(i) * LATENCY_BUCKET_RATIO.powf(within)
                };
            }
            before += count;
        }
        bucket_lower(LATENCY_BUCKETS - 1)
    }

    pub fn latency_avg_ms(&self) -> f64 {
        if self.requests > 0 {
            self.latency_sum_ms / self.requests as f64
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_bounded() {
        assert_eq!(latency_bucket(f64::NAN), 0);
        assert_eq!(latency_bucket(-3.0), 0);
        assert_eq!(latency_bucket(0.2), 0);
        assert_eq!(latency_bucket(1.3), 1);
        assert_eq!(latency_bucket(f64::INFINITY), LATENCY_BUCKETS - 1);
        assert_eq!(latency_bucket(1e12), LATENCY_BUCKETS - 1);
        let mut last = 0;
        let mut x = 0.01;
        while x < 1e7 {
            let b = latency_bucket(x);
            assert!(b >= last);
            assert!(
                b == 0 || bucket_lower(b) <= x * (1.0 + 1e-12),
                "{x} in bucket {b}"
            );
            last = b;
            x *= 1.01;
        }
    }

    #[test]
    fn percentile_stays_in_the_exact_values_bucket() {
        let values: Vec<f64> = (1..=1000).map(|i| (i as f64) * 3.7).collect();
        let mut agg = Agg::default();
        for v in &values {
            agg.buckets[latency_bucket(*v)] += 1;
            agg.requests += 1;
        }
        for q in [0.01, 0.5, 0.9, 0.95, 0.99, 1.0] {
            let exact = values[((q * 1000.0_f64).ceil() as usize).clamp(1, 1000) - 1];
            let est = agg.percentile(q);
            assert_eq!(
                latency_bucket(est),
                latency_bucket(exact),
                "q={q} est={est} exact={exact}"
            );
            let ratio = est / exact;
            assert!(ratio < LATENCY_BUCKET_RATIO && ratio > 1.0 / LATENCY_BUCKET_RATIO);
        }
        assert_eq!(Agg::default().percentile(0.5), 0.0);
    }
}
