//! Sharding a plan across CI jobs: `hash:M/N` (stable under matrix edits) or `slice:M/N`
//! (round-robin, evenly sized). M is 1-based.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    Hash,
    Slice,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub strategy: Strategy,
    /// 1-based shard number.
    pub shard: u64,
    pub total: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PartitionError {
    #[error("partition `{0}` is malformed; expected `hash:M/N` or `slice:M/N` (e.g. `hash:1/3`)")]
    Malformed(String),
    #[error("unknown partition strategy `{0}`; known strategies: `hash`, `slice`")]
    Strategy(String),
    #[error("partition `{0}` is out of range: N must be at least 1 and M between 1 and N")]
    Range(String),
}

impl FromStr for Partition {
    type Err = PartitionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (strategy, rest) = s
            .split_once(':')
            .ok_or_else(|| PartitionError::Malformed(s.into()))?;
        let strategy = match strategy {
            "hash" => Strategy::Hash,
            "slice" => Strategy::Slice,
            other => return Err(PartitionError::Strategy(other.into())),
        };
        let (m, n) = rest
            .split_once('/')
            .ok_or_else(|| PartitionError::Malformed(s.into()))?;
        let shard: u64 = m
            .trim()
            .parse()
            .map_err(|_| PartitionError::Malformed(s.into()))?;
        let total: u64 = n
            .trim()
            .parse()
            .map_err(|_| PartitionError::Malformed(s.into()))?;
        if total == 0 || shard == 0 || shard > total {
            return Err(PartitionError::Range(s.into()));
        }
        Ok(Partition {
            strategy,
            shard,
            total,
        })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self.strategy {
            Strategy::Hash => "hash",
            Strategy::Slice => "slice",
        };
        write!(f, "{s}:{}/{}", self.shard, self.total)
    }
}

/// FNV-1a: tiny, stable across platforms and Rust releases (unlike `DefaultHasher`).
pub fn stable_hash(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Partition {
    /// Whether the cell at `index` (in unpartitioned order) with `id` belongs to this shard.
    pub fn contains(&self, index: usize, id: &str) -> bool {
        let bucket = match self.strategy {
            Strategy::Hash => stable_hash(id) % self.total,
            Strategy::Slice => index as u64 % self.total,
        };
        bucket == self.shard - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            "hash:1/3".parse::<Partition>().unwrap().to_string(),
            "hash:1/3"
        );
        assert_eq!(
            "slice:2/2".parse::<Partition>().unwrap().strategy,
            Strategy::Slice
        );
        assert_eq!(
            "hash:0/3".parse::<Partition>(),
            Err(PartitionError::Range("hash:0/3".into()))
        );
        assert_eq!(
            "hash:4/3".parse::<Partition>(),
            Err(PartitionError::Range("hash:4/3".into()))
        );
        assert_eq!(
            "hash:1/0".parse::<Partition>(),
            Err(PartitionError::Range("hash:1/0".into()))
        );
        assert!(matches!(
            "count:1/3".parse::<Partition>(),
            Err(PartitionError::Strategy(_))
        ));
        assert!(matches!(
            "hash1/3".parse::<Partition>(),
            Err(PartitionError::Malformed(_))
        ));
        assert!(matches!(
            "hash:a/3".parse::<Partition>(),
            Err(PartitionError::Malformed(_))
        ));
    }

    #[test]
    fn every_index_lands_in_exactly_one_shard() {
        for strategy in ["hash", "slice"] {
            for n in 1..6u64 {
                for i in 0..50usize {
                    let id = format!("cell-{i}");
                    let hits = (1..=n)
                        .filter(|m| {
                            format!("{strategy}:{m}/{n}")
                                .parse::<Partition>()
                                .unwrap()
                                .contains(i, &id)
                        })
                        .count();
                    assert_eq!(hits, 1);
                }
            }
        }
    }
}
