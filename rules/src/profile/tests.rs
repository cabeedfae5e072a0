//! Reading the profile format: matching with exclusions, built-in
//! configurations and where their errors are reported.

use super::ProfileSet;
use super::model::ConfigSourceKind;

/// Line and column (1-based) of a byte offset.
fn line_col(text: &str, offset: u32) -> (usize, usize) {
    let before = &text[..offset as usize];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, str::len) + 1;
    (line, col)
}

fn load(text: &str) -> Result<ProfileSet, Vec<crate::source::SpanError>> {
    let mut set = ProfileSet { profiles: Vec::new() };
    set.add_text("test.yaml", text).map(|()| set)
}

#[test]
fn exclusions_leave_other_programs_of_a_project_to_other_profiles() {
    let set = load(
        "id: agent\nname: Agent\nmatch:\n  images: ['*acme/agent*']\n  exclude_images: ['*acme/agent-operator']\n  exclude_commands: [agent-migrate]\n---\nid: operator\nname: Operator\nmatch:\n  images: ['*acme/agent-operator']\n",
    )
    .unwrap();
    let id = |image: &str, cmd: Option<&str>| set.for_container(Some(image), cmd).map(|p| p.id.clone());
    assert_eq!(id("registry.example.com/acme/agent:1.2", None).as_deref(), Some("agent"));
    assert_eq!(id("registry.example.com/acme/agent-operator:1.2", None).as_deref(), Some("operator"));
    // The same image running another binary of the project.
    assert_eq!(id("registry.example.com/acme/agent:1.2", Some("/usr/bin/agent-migrate")), None);
    assert_eq!(id("registry.example.com/acme/agent:1.2", Some("/bin/sh")).as_deref(), Some("agent"));
}

#[test]
fn a_builtin_configuration_is_parsed_when_the_profile_is_read() {
    let set = load(
        "id: dns\nname: DNS\nmatch: {images: ['*dns']}\nconfig:\n  - flag: [-conf]\n    format: corefile\n  - builtin: |\n      .:53 {\n          whoami\n      }\n    format: corefile\n    when: {absent: \"$.args[0]\"}\n",
    )
    .unwrap();
    let p = set.get("dns").unwrap();
    let ConfigSourceKind::Builtin { node, .. } = &p.config[1].kind else { panic!("{:?}", p.config[1].kind) };
    let name =
        node.path(&["servers"]).and_then(|s| s.as_seq()).unwrap()[0].get("plugins").and_then(|s| s.as_seq()).unwrap()
            [0]
        .get("name")
        .and_then(|n| n.as_str().map(str::to_string));
    assert_eq!(name.as_deref(), Some("whoami"));
    assert!(p.config[1].when.is_some());
}

#[test]
fn a_broken_builtin_configuration_is_an_error_at_its_line_in_the_profile() {
    let text = "id: dns\nname: DNS\nmatch: {images: ['*dns']}\nconfig:\n  - builtin: |\n      .:53 {\n          hosts \"/etc/hosts\n      }\n    format: corefile\n";
    let errors = load(text).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].message.contains("does not parse as `corefile`"), "{errors:?}");
    assert!(errors[0].message.contains("unterminated"), "{errors:?}");
    // The quote on line 7, column 17 of the profile file.
    assert_eq!(line_col(text, errors[0].span.start), (7, 17));
}

#[test]
fn format_errors_have_positions() {
    let cases = [
        ("id: a\nname: A\nmatch: {images: [x], exclude: [y]}\n", (3, 22), "unknown key `exclude`"),
        (
            "id: a\nname: A\nmatch: {images: [x]}\nconfig:\n  - builtin: 'a=b'\n    format: keyvalue\n",
            (5, 14),
            "keyvalue",
        ),
        (
            "id: a\nname: A\nmatch: {images: [x]}\nconfig:\n  - builtin: [x]\n    format: yaml\n",
            (5, 14),
            "must be a string",
        ),
        (
            "id: a\nname: A\nmatch: {images: [x]}\nconfig:\n  - path: /x\n    format: yaml\n    when: {versions: '< 1'}\n",
            (7, 12),
            "unknown condition",
        ),
    ];
    for (text, at, message) in cases {
        let errors = load(text).unwrap_err();
        assert!(errors[0].message.contains(message), "{text}: {errors:?}");
        assert_eq!(line_col(text, errors[0].span.start), at, "{text}: {errors:?}");
    }
}
