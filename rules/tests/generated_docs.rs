//! The parts of the documentation that are generated from the engine's own
//! declarations, so that they cannot drift: the category table of
//! docs/output.md (from `Category`), the profile table of docs/profiles.md and
//! the agent list of the README (from the built-in profiles). Each sits
//! between `<!-- generated: NAME -->` and `<!-- end generated -->`; a test
//! fails when one is stale, and `APILOAD_BLESS=1` rewrites it.
//! (docs/rules.md is generated whole: `apiload rules --markdown`.)

use apiload_rules::Category;
use apiload_rules::profile::ProfileSet;
use std::path::Path;

fn check_region(file: &str, name: &str, content: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let begin = format!("<!-- generated: {name} -->\n");
    let end = "<!-- end generated -->";
    let start = text.find(&begin).unwrap_or_else(|| panic!("{file}: no `{}` marker", begin.trim())) + begin.len();
    let stop = start + text[start..].find(end).unwrap_or_else(|| panic!("{file}: `{name}` has no end marker"));
    if text[start..stop] == *content {
        return;
    }
    if std::env::var_os("APILOAD_BLESS").is_some() {
        let updated = format!("{}{content}{}", &text[..start], &text[stop..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    panic!(
        "{file}: the generated `{name}` section is stale; regenerate with `APILOAD_BLESS=1 cargo test -p apiload-rules --test generated_docs`\nexpected:\n{content}"
    );
}

#[test]
fn the_category_table_of_docs_output_is_current() {
    let mut table = String::from("| category | meaning |\n|---|---|\n");
    for c in Category::ALL {
        table.push_str(&format!("| `{}` | {} |\n", c.as_str(), c.meaning()));
    }
    check_region("docs/output.md", "categories", &table);
}

#[test]
fn the_profile_table_of_docs_profiles_is_current() {
    let mut table =
        String::from("| profile | agent | recognised by (image, command) | what it models |\n|---|---|---|---|\n");
    let profiles = ProfileSet::builtin();
    let mut all: Vec<_> = profiles.iter().collect();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    for p in all {
        let mut images: Vec<String> = p.images.iter().map(|i| format!("`{i}`")).collect();
        images.extend(p.commands.iter().map(|c| format!("command `{c}`")));
        let uses: Vec<&str> = p.uses.iter().map(|u| u.id.as_str()).collect();
        table.push_str(&format!("| `{}` | {} | {} | {} |\n", p.id, p.name, images.join(", "), uses.join(", ")));
    }
    check_region("docs/profiles.md", "profiles", &table);
}

#[test]
fn the_agent_list_of_the_readme_is_current() {
    let profiles = ProfileSet::builtin();
    let mut names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
    names.sort_by_key(|n| n.to_lowercase());
    let line = format!("Built-in agent profiles ({}): {}.\n", names.len(), names.join(", "));
    check_region("README.md", "agents", &line);
}
