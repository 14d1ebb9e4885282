//! Planning cost: 6 minors × 4 channels × 3 Flux versions × 50 scenarios (target < 20 ms), and
//! loading + validating the default matrix with its scenarios.

use criterion::{Criterion, criterion_group, criterion_main};
use flux_compat::config::{self, Sources};
use flux_compat::plan::{self, Filter};
use std::fmt::Write;
use std::path::PathBuf;

/// Write a synthetic matrix and scenario set of the benchmark's size.
fn synthetic(dir: &std::path::Path) -> Sources {
    let digest = format!("sha256:{}", "a".repeat(64));
    let mut m = String::from(
        "apiVersion: flux-compat/v1alpha1\nkind: Matrix\nkindVersion: v0.33.0\nkubernetes:\n",
    );
    for minor in 32..38 {
        let _ = write!(
            m,
            "  - minor: \"1.{minor}\"\n    version: v1.{minor}.1\n    nodeImage: kindest/node:v1.{minor}.1@{digest}\n"
        );
    }
    m.push_str("flux:\n  - version: v2.9.4\n  - version: v2.8.8\n  - version: v2.7.5\ncomponents: [source-controller]\nchannels:\n");
    for ch in ["upstream", "mainline", "distroless", "fips"] {
        let _ = write!(
            m,
            "  - name: {ch}\n    registry: ghcr.io/x/{ch}\n    operatorVariant: v\n    fips: {}\n    base: alpine\n    releases:\n",
            ch == "fips"
        );
        for f in ["v2.9.4", "v2.8.8", "v2.7.5"] {
            let _ = write!(
                m,
                "      - flux: {f}\n        images:\n          source-controller: {{tag: v1, digest: \"{digest}\"}}\n"
            );
        }
    }
    std::fs::write(dir.join("matrix.yaml"), m).unwrap();
    let sdir = dir.join("scenarios");
    std::fs::create_dir_all(&sdir).unwrap();
    for i in 0..50 {
        let gate = match i % 3 {
            0 => "    flux: \">=2.8.0\"\n",
            1 => "    kubernetes: \">=1.34\"\n",
            _ => "    fips: true\n",
        };
        let s = format!(
            "apiVersion: flux-compat/v1alpha1\nkind: Scenario\nmetadata:\n  name: s{i}\n  tags: [t{}]\nspec:\n  applicability:\n{gate}  steps:\n    - apply:\n        manifests: |\n          apiVersion: v1\n          kind: ConfigMap\n          metadata:\n            name: c\n            namespace: ${{{{ namespace }}}}\n    - waitFor: {{apiVersion: v1, kind: ConfigMap, name: c}}\n",
            i % 5
        );
        std::fs::write(sdir.join(format!("s{i}.yaml")), s).unwrap();
    }
    Sources {
        matrix: dir.join("matrix.yaml"),
        scenarios_dir: None,
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let loaded = config::load(&synthetic(dir.path())).expect("synthetic config is valid");
    let filter = Filter::default();
    let p = plan::build(&loaded.matrix, &loaded.scenarios, &filter, None);
    assert_eq!(p.cells.len(), 6 * 4 * 3);
    assert_eq!(
        p.cells.iter().map(|c| c.scenarios.len()).sum::<usize>(),
        6 * 4 * 3 * 50
    );
    c.bench_function("plan 6x4x3 cells x 50 scenarios", |b| {
        b.iter(|| plan::build(&loaded.matrix, &loaded.scenarios, &filter, None))
    });
    c.bench_function("load + validate 4x3 channels x 50 scenarios", |b| {
        b.iter(|| config::load(&synthetic_sources(dir.path())).unwrap())
    });
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let default = Sources {
        matrix: root.join("matrix.yaml"),
        scenarios_dir: None,
    };
    c.bench_function("load + validate the default matrix", |b| {
        b.iter(|| config::load(&default).unwrap())
    });
}

fn synthetic_sources(dir: &std::path::Path) -> Sources {
    Sources {
        matrix: dir.join("matrix.yaml"),
        scenarios_dir: None,
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
