//! Reading the gateway's embedded database (`<data-dir>/pg`), or any other,
//! with `psql`.

use std::path::Path;
use std::process::Command;

/// Rows of a query on the gateway's embedded database (tab-separated fields,
/// NULL as an empty string).
pub fn psql(data_dir: &Path, sql: &str) -> Vec<Vec<String>> {
    psql_url(
        &format!(
            "host={} user=hotline dbname=hotline",
            data_dir.join("pg").display()
        ),
        sql,
    )
}

/// Rows of a query on the database `conninfo` names (a `postgres://` URL or
/// `key=value` pairs), as [`psql`] returns them.
pub fn psql_url(conninfo: &str, sql: &str) -> Vec<Vec<String>> {
    let out = Command::new("timeout")
        .arg("20")
        .arg("psql")
        .arg(conninfo)
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
