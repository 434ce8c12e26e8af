//! `hotline flows import|export` as a user runs them: the binary against a
//! throwaway PostgreSQL (DATABASE_URL), files in and the same bytes out.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hotline_store::testing::{TestCluster, fresh_db};

fn root() -> PathBuf {
    Path::new(&manifest_dir()).join("../..")
}

fn hotline(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(args)
        .current_dir(root())
        .env("DATABASE_URL", url)
        .env_remove("HOTLINE_FLOWS_DIR")
        .env_remove("HOTLINE_SOUNDS_DIR")
        .env_remove("HOTLINE_CONFIG")
        .output()
        .expect("run hotline")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test]
async fn import_then_export_round_trips_byte_for_byte() {
    let cluster = TestCluster::shared();
    let db = fresh_db().await;
    let url = cluster.pg.url(&db.name);
    let dir = cluster.scratch("flows-cli");
    let (src, out) = (dir.join("src"), dir.join("out"));
    std::fs::create_dir_all(&src).unwrap();
    let main = std::fs::read(root().join("ivr-flows/main.yaml")).unwrap();
    std::fs::write(src.join("main.yaml"), &main).unwrap();
    let src_s = src.to_str().unwrap();
    let sounds = root().join("sounds");
    let sounds_s = sounds.to_str().unwrap();

    let o = hotline(&url, &["flows", "import", src_s, "--sounds-dir", sounds_s]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "main: published v1\n");
    let o = hotline(&url, &["flows", "import", src_s, "--sounds-dir", sounds_s]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "main: unchanged\n");

    let o = hotline(&url, &["flows", "export", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("main.yaml: v1"), "{}", text(&o));
    assert_eq!(std::fs::read(out.join("main.yaml")).unwrap(), main);

    // A broken file: every error with its position, exit 1, nothing created.
    std::fs::write(
        src.join("main.yaml"),
        "flow: main\nstart: nowhere\nnodes: {}\n",
    )
    .unwrap();
    let o = hotline(&url, &["flows", "import", src_s, "--sounds-dir", sounds_s]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("main.yaml:2:"), "{}", text(&o));
    let o = hotline(&url, &["flows", "export", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(out.join("main.yaml")).unwrap(), main);
}

/// The package's directory as `cargo test` gives it at run time (the
/// compile-time one is stale when a shared target dir reuses this test
/// binary for a checkout elsewhere).
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}
