//! `sitectl ps`: the table (aligned, with the error lines of a failed build), its
//! colours (on a terminal only, never with NO_COLOR) and the `--json` schema, as
//! snapshots of what a person sees.

use std::net::{Ipv4Addr, TcpListener};

use sited_tests::{DEADLINE, Home, column_starts, wait_until};

/// Three distinct free ports, lowest first, so the rows come out in a known order.
fn three_ports() -> [u16; 3] {
    let held: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
        .collect();
    let mut ports: Vec<u16> = held
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    ports.sort_unstable();
    [ports[0], ports[1], ports[2]]
}

/// A clean site, one with a broken front matter, and one whose folder was deleted.
fn three_sites(home: &Home) -> [u16; 3] {
    let ports = three_ports();
    let good = home.site(
        "good",
        &[("content/a.md", "+++\ntitle = \"A\"\n+++\nText\n")],
    );
    let broken = home.site(
        "broken",
        &[
            ("content/a.md", "+++\ntitle = \"A\"\n+++\nText\n"),
            (
                "content/b.md",
                "+++\ntitle = \"B\ndate = 2026-01-01\n+++\nText\n",
            ),
        ],
    );
    let gone = home.site("gone", &[("index.md", "# Soon gone\n")]);
    for (root, port) in [(&good, ports[0]), (&broken, ports[1]), (&gone, ports[2])] {
        home.up(root, &["--port", &port.to_string()]);
    }
    std::fs::remove_dir_all(&gone).unwrap();
    assert!(
        wait_until(DEADLINE, || home
            .ps()
            .iter()
            .any(|s| s["port"] == ports[2] && s["state"] == "failed")),
        "the deleted site never showed as failed: ps {:#}\nlog: {}",
        serde_json::Value::from(home.ps()),
        home.log_text()
    );
    ports
}

#[test]
fn ps_table_is_aligned_and_shows_errors_and_failures() {
    let home = Home::new();
    let ports = three_sites(&home);
    let table = home.sitectl_ok(&["ps"]);
    assert!(!table.contains('\x1b'), "no colour into a pipe: {table:?}");

    // Every row's cells start where their column's title does.
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    let starts = column_starts(header);
    assert_eq!(starts.len(), 7, "{header}");
    for row in lines.filter(|l| !l.starts_with(' ')) {
        for &start in &starts[1..] {
            assert!(
                row.as_bytes()[start - 1] == b' ' && row.as_bytes()[start] != b' ',
                "cell not aligned at column {start}:\n{table}"
            );
        }
    }
    insta::assert_snapshot!(home.redact_table(&table, &ports));
}

#[test]
fn ps_json_snapshot() {
    let home = Home::new();
    let ports = three_sites(&home);
    let json = home.sitectl_ok(&["ps", "--json"]);
    let times = regex::Regex::new(r#""(build_ms|built_at_ms|started_at_ms)": \d+"#).unwrap();
    let json = times.replace_all(&json, r#""$1": [N]"#);
    insta::assert_snapshot!(home.redact(&json, &ports));
}

#[test]
fn ps_is_coloured_on_a_terminal_unless_no_color() {
    let home = Home::new();
    let ports = three_sites(&home);
    let (coloured, code) = home.run_in_terminal("sitectl", &["ps"], &[]);
    assert_eq!(code, 0, "{coloured}");
    let green = "\x1b[32mserving\x1b[0m";
    let red = "\x1b[31mfailed\x1b[0m";
    assert!(coloured.contains(green), "serving is green: {coloured:?}");
    assert!(coloured.contains(red), "failed is red: {coloured:?}");
    assert!(
        coloured.contains("\x1b[31merror:\x1b[0m"),
        "error lines are red: {coloured:?}"
    );
    // Colour takes no room: without the escapes it is the same table as in a pipe.
    let plain = regex::Regex::new("\x1b\\[[0-9;]*m").unwrap();
    let piped = home.sitectl_ok(&["ps"]);
    assert_eq!(
        home.redact_table(&plain.replace_all(&coloured, ""), &ports),
        home.redact_table(&piped, &ports)
    );

    let (no_color, code) = home.run_in_terminal("sitectl", &["ps"], &[("NO_COLOR", "1")]);
    assert_eq!(code, 0, "{no_color}");
    assert!(no_color.contains("serving"), "{no_color}");
    assert!(
        !no_color.contains('\x1b'),
        "NO_COLOR is obeyed: {no_color:?}"
    );
}
