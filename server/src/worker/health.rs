//! What a worker says about its machine with each heartbeat: CPU busy since the previous
//! report, memory in use, free and total space of its data disk and the one-minute load. Read
//! from `/proc` and `statvfs` on Linux; elsewhere the values are absent.

use std::path::PathBuf;

use contracts::WorkerHealth;

/// Measures health; keeps the previous CPU counters to report the share busy since then.
#[derive(Debug)]
pub struct HealthMeter {
    data_dir: PathBuf,
    /// (busy, total) jiffies at the previous report.
    cpu: Option<(u64, u64)>,
}

impl HealthMeter {
    pub fn new(data_dir: PathBuf) -> HealthMeter {
        HealthMeter {
            data_dir,
            cpu: None,
        }
    }

    /// A report now (the first one has no CPU share: there is nothing to compare with).
    pub fn sample(&mut self) -> WorkerHealth {
        let cpu = read("/proc/stat").as_deref().and_then(cpu_counters);
        let cpu_percent = match (self.cpu, cpu) {
            (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => {
                let busy = busy1.saturating_sub(busy0) as f64;
                Some((100.0 * busy / (total1 - total0) as f64) as f32)
            }
            _ => None,
        };
        if cpu.is_some() {
            self.cpu = cpu;
        }
        let (disk_free_bytes, disk_total_bytes) = disk(&self.data_dir);
        WorkerHealth {
            cpu_percent,
            memory_percent: read("/proc/meminfo").as_deref().and_then(memory_percent),
            disk_free_bytes,
            disk_total_bytes,
            load_1m: read("/proc/loadavg").as_deref().and_then(load),
        }
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// (busy, total) from the first line of `/proc/stat`: `cpu user nice system idle iowait …`.
fn cpu_counters(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let values: Vec<u64> = line
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    if values.len() < 4 {
        return None;
    }
    // Guest time is already counted in user time.
    let total: u64 = values.iter().take(8).sum();
    let idle = values[3] + values.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// Memory in use from `/proc/meminfo` (`MemTotal` less `MemAvailable`).
fn memory_percent(meminfo: &str) -> Option<f32> {
    let field = |name: &str| -> Option<f64> {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    let (total, available) = (field("MemTotal:")?, field("MemAvailable:")?);
    (total > 0.0).then(|| (100.0 * (total - available) / total) as f32)
}

fn load(loadavg: &str) -> Option<f32> {
    loadavg.split_whitespace().next()?.parse().ok()
}

#[cfg(target_os = "linux")]
fn disk(dir: &std::path::Path) -> (Option<u64>, Option<u64>) {
    match rustix::fs::statvfs(dir) {
        Ok(stat) => (
            Some(stat.f_bavail.saturating_mul(stat.f_frsize)),
            Some(stat.f_blocks.saturating_mul(stat.f_frsize)),
        ),
        Err(_) => (None, None),
    }
}

#[cfg(not(target_os = "linux"))]
fn disk(_dir: &std::path::Path) -> (Option<u64>, Option<u64>) {
    (None, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_linux_reports() {
        let stat = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n";
        assert_eq!(cpu_counters(stat), Some((150, 1000)));
        assert_eq!(cpu_counters("intr 1 2 3"), None);
        let meminfo =
            "MemTotal:       16000000 kB\nMemFree:  100 kB\nMemAvailable:    4000000 kB\n";
        assert_eq!(memory_percent(meminfo), Some(75.0));
        assert_eq!(memory_percent("MemTotal: 0 kB\nMemAvailable: 0 kB"), None);
        assert_eq!(load("0.52 0.58 0.59 1/467 12345\n"), Some(0.52));
    }

    #[test]
    fn a_second_sample_has_the_cpu_share_and_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut meter = HealthMeter::new(dir.path().to_path_buf());
        let first = meter.sample();
        assert_eq!(first.cpu_percent, None);
        if cfg!(target_os = "linux") {
            let mut spin = 0u64;
            for i in 0..2_000_000u64 {
                spin = spin.wrapping_add(i * i);
            }
            assert!(spin > 0);
            let second = meter.sample();
            assert!(
                second
                    .memory_percent
                    .is_some_and(|m| (0.0..=100.0).contains(&m))
            );
            let (free, total) = (
                second.disk_free_bytes.unwrap(),
                second.disk_total_bytes.unwrap(),
            );
            assert!(free <= total && total > 0);
            assert!(second.load_1m.is_some());
            // The share needs the counters to have moved; they always do on a running system
            // with a tick in between, which a spin of this size does not guarantee.
            if let Some(cpu) = second.cpu_percent {
                assert!((0.0..=100.0).contains(&cpu));
            }
        }
    }
}
