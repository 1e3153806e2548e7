//! How the list, add and delete subcommands print the API's answer: with `--json` the
//! answer itself as JSON (what scripts read), otherwise a table or one sentence (what an
//! operator reads). Kept in one place so that every subcommand makes that choice alike.

use serde::Serialize;

use super::{print_json, table};

/// A list: with `--json` the items, otherwise a table with one row per item.
pub(crate) fn print_list<T: Serialize>(
    json: bool,
    items: &[T],
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) {
    print_list_rows(json, items, header, |item| vec![row(item)]);
}

/// [`print_list`] for items that take several rows of the table (a group and its
/// rules) or none.
pub(crate) fn print_list_rows<T: Serialize>(
    json: bool,
    items: &[T],
    header: &[&str],
    rows: impl Fn(&T) -> Vec<Vec<String>>,
) {
    if json {
        print_json(&items);
    } else {
        let rows: Vec<Vec<String>> = items.iter().flat_map(rows).collect();
        table(header, &rows);
    }
}

/// What an add or change returned: with `--json` the API's answer, otherwise the
/// sentence made from it.
pub(crate) fn print_done<T: Serialize>(
    json: bool,
    answer: &T,
    sentence: impl FnOnce(&T) -> String,
) {
    if json {
        print_json(answer);
    } else {
        println!("{}", sentence(answer));
    }
}

/// A deletion, whose answer carries nothing: with `--json` `{"ok": true}`, otherwise the
/// sentence.
pub(crate) fn print_deleted(json: bool, sentence: impl FnOnce() -> String) {
    print_done(json, &serde_json::json!({"ok": true}), |_| sentence());
}
