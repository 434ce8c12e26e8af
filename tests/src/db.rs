//! Reading the gateway's embedded database (`<data-dir>/pg`) with `psql`.

use std::path::Path;
use std::process::Command;

/// Rows of a query on the gateway's embedded database (tab-separated fields,
/// NULL as an empty string).
pub fn psql(data_dir: &Path, sql: &str) -> Vec<Vec<String>> {
    let out = Command::new("timeout")
        .arg("20")
        .arg("psql")
        .arg(format!(
            "host={} user=hotline dbname=hotline",
            data_dir.join("pg").display()
        ))
        .args([
            "-X",
            "-A",
            "-t",
            "-F",
            "\t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("psql (postgresql-client) is installed");
    assert!(
        out.status.success(),
        "psql failed: {}\n{sql}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}
