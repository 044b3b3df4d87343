//! The XDT engine, transform by transform and locator by locator. The cases follow the
//! reference's fixtures (`ConfigurationTransformsFixture`, the samples it applies) and
//! Microsoft's documented semantics; the expected documents are written out by hand from
//! those rules, including the whitespace the reference's formatter gives added and removed
//! elements.

use super::*;

const XDT: &str = "xmlns:xdt=\"http://schemas.microsoft.com/XML-Document-Transform\"";

/// Applies `transform` to `source`: the new text and what was reported.
fn run(source: &str, transform: &str) -> Applied {
    let tf = TransformFile::parse("Web.Release.config", transform.to_string()).expect("the transform is XML");
    apply(&tf, "Web.config", source).expect("the source is XML")
}

/// The new text, checking nothing but messages was reported.
fn transformed(source: &str, transform: &str) -> String {
    let applied = run(source, transform);
    let problems: Vec<&Event> = applied.events.iter().filter(|e| e.severity != Severity::Message).collect();
    assert!(problems.is_empty(), "unexpected warnings or errors: {problems:#?}");
    assert!(!applied.logged_errors);
    applied.text
}

fn texts(applied: &Applied, severity: Severity) -> Vec<String> {
    applied.events.iter().filter(|e| e.severity == severity).map(|e| e.text.clone()).collect()
}

const WEB_CONFIG: &str = "\u{feff}<?xml version=\"1.0\"?>\n\n<configuration>\n  <system.web>\n    <compilation debug=\"true\" targetFramework=\"4.0\" />\n  </system.web>\n\n  <appSettings>\n    <add key=\"WelcomeMessage\" value=\"\" />\n    <add key=\"LogFile\" value=\"\" />\n  </appSettings>\n</configuration>\n";

#[test]
fn release_transform_sets_and_removes_attributes_keeping_everything_else() {
    let source = WEB_CONFIG.trim_start_matches('\u{feff}');
    let transform = format!(
        "<?xml version=\"1.0\"?>\n<configuration {XDT}>\n  <appSettings>\n    <add key=\"WelcomeMessage\" value=\"Release!\" xdt:Transform=\"SetAttributes\" xdt:Locator=\"Match(key)\" />\n  </appSettings>\n  <system.web>\n    <compilation xdt:Transform=\"RemoveAttributes(debug)\" />\n  </system.web>\n</configuration>\n"
    );
    let expected = "<?xml version=\"1.0\"?>\n\n<configuration>\n  <system.web>\n    <compilation targetFramework=\"4.0\" />\n  </system.web>\n\n  <appSettings>\n    <add key=\"WelcomeMessage\" value=\"Release!\" />\n    <add key=\"LogFile\" value=\"\" />\n  </appSettings>\n</configuration>\n";
    let applied = run(source, &transform);
    assert_eq!(applied.text, expected);
    let messages = texts(&applied, Severity::Message);
    let column = transform.lines().nth(3).unwrap().find("xdt:Transform").unwrap() + 1;
    let executing = format!("Executing SetAttributes (transform line 4, {column})");
    for line in [
        executing.as_str(),
        "on /configuration/appSettings/add[@key='WelcomeMessage']",
        "Applying to 'add' element (source line 9, 6)",
        "Set 'key' attribute",
        "Set 'value' attribute",
        "Set 2 attributes",
        "Done executing SetAttributes",
        "Executing RemoveAttributes (transform line 7, 18)",
        "Removed 'debug' attribute",
        "Removed 1 attributes",
    ] {
        assert!(messages.iter().any(|m| m == line), "no {line:?} in {messages:#?}");
    }
}

#[test]
fn namespaces_of_the_transform_resolve_against_the_target() {
    // The reference's nlog sample: both documents in the NLog default namespace.
    let source = "<nlog autoReload=\"true\" \n      xmlns=\"http://www.nlog-project.org/schemas/NLog.xsd\" \n      xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n    <targets>\n        <target name=\"csv\"\n                xsi:type=\"File\">\n            <layout xsi:type=\"CSVLayout\">\n            </layout>\n        </target>\n    </targets>\n\n    <rules>\n        <logger name=\"*\" minlevel=\"Debug\" writeTo=\"csv\" />\n    </rules>\n</nlog>";
    let transform = format!(
        "<nlog\n        xmlns=\"http://www.nlog-project.org/schemas/NLog.xsd\"\n        {XDT}>\n    <targets>\n        <target name=\"csv\" fileName=\"log.txt\" archiveFileName=\"log.txt\" xdt:Transform=\"SetAttributes\" xdt:Locator=\"Match(name)\" />\n    </targets>\n    <rules>\n        <logger name=\"*\" minlevel=\"Info\" xdt:Transform=\"SetAttributes\" xdt:Locator=\"Match(name)\" />\n    </rules>\n</nlog>"
    );
    // `target` has its attributes one per line: the new ones follow on lines of their own.
    let expected = "<nlog autoReload=\"true\" \n      xmlns=\"http://www.nlog-project.org/schemas/NLog.xsd\" \n      xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n    <targets>\n        <target name=\"csv\"\n                xsi:type=\"File\"\n                fileName=\"log.txt\"\n                archiveFileName=\"log.txt\">\n            <layout xsi:type=\"CSVLayout\">\n            </layout>\n        </target>\n    </targets>\n\n    <rules>\n        <logger name=\"*\" minlevel=\"Info\" writeTo=\"csv\" />\n    </rules>\n</nlog>";
    let applied = run(source, &transform);
    assert_eq!(applied.text, expected);
    assert!(texts(&applied, Severity::Message).contains(
        &"on /_defaultNamespace:nlog/_defaultNamespace:targets/_defaultNamespace:target[@name='csv']".to_string()
    ));
}

#[test]
fn an_unprefixed_transform_does_not_match_a_namespaced_target() {
    let source = "<c xmlns=\"urn:c\"><a x=\"1\"/></c>";
    let transform = format!("<c {XDT}><a x=\"2\" xdt:Transform=\"SetAttributes\"/></c>");
    let applied = run(source, &transform);
    assert_eq!(applied.text, source);
    assert_eq!(texts(&applied, Severity::Warning), ["No element in the source document matches '/c'"]);
}

#[test]
fn insert_appends_on_a_line_of_its_own_indented_like_the_siblings() {
    let source =
        "<configuration>\n  <appSettings>\n    <add key=\"a\" value=\"1\" />\n  </appSettings>\n</configuration>\n";
    let transform = format!(
        "<configuration {XDT}>\n  <appSettings>\n    <add key=\"b\" value=\"2\" xdt:Transform=\"Insert\" />\n    <add key=\"c\"\n         value=\"3\" xdt:Transform=\"Insert\"/>\n  </appSettings>\n</configuration>\n"
    );
    // The transform's attributes are left behind; new start tags are written as the
    // reference's writer writes them (single spaces, `/>`).
    let expected = "<configuration>\n  <appSettings>\n    <add key=\"a\" value=\"1\" />\n    <add key=\"b\" value=\"2\"/>\n    <add key=\"c\" value=\"3\"/>\n  </appSettings>\n</configuration>\n";
    let applied = run(source, &transform);
    assert_eq!(applied.text, expected);
    assert_eq!(
        texts(&applied, Severity::Message).iter().filter(|m| m.starts_with("Inserted")).collect::<Vec<_>>(),
        ["Inserted 'add' element", "Inserted 'add' element"]
    );
}

#[test]
fn insert_opens_an_empty_element_and_indents_one_step_deeper() {
    let source = "<configuration>\n  <appSettings/>\n  <connectionStrings></connectionStrings>\n</configuration>";
    let transform = format!(
        "<configuration {XDT}>\n  <appSettings>\n    <add key=\"a\" xdt:Transform=\"Insert\"/>\n  </appSettings>\n  <connectionStrings>\n    <add name=\"db\" xdt:Transform=\"Insert\"/>\n  </connectionStrings>\n</configuration>"
    );
    let expected = "<configuration>\n  <appSettings>\n    <add key=\"a\"/>\n  </appSettings>\n  <connectionStrings>\n    <add name=\"db\"/>\n  </connectionStrings>\n</configuration>";
    assert_eq!(transformed(source, &transform), expected);
}

#[test]
fn inserted_content_keeps_its_inner_layout_and_the_target_line_endings() {
    let source =
        "<configuration>\r\n\t<system.webServer>\r\n\t\t<handlers/>\r\n\t</system.webServer>\r\n</configuration>\r\n";
    let transform = format!(
        "<configuration {XDT}>\n\t<system.webServer>\n\t\t<rewrite xdt:Transform=\"Insert\">\n\t\t\t<rules>\n\t\t\t\t<!-- https -->\n\t\t\t\t<rule name=\"https\" stopProcessing=\"true\"/>\n\t\t\t</rules>\n\t\t</rewrite>\n\t</system.webServer>\n</configuration>"
    );
    let expected = "<configuration>\r\n\t<system.webServer>\r\n\t\t<handlers/>\r\n\t\t<rewrite>\r\n\t\t\t<rules>\r\n\t\t\t\t<!-- https -->\r\n\t\t\t\t<rule name=\"https\" stopProcessing=\"true\"/>\r\n\t\t\t</rules>\r\n\t\t</rewrite>\r\n\t</system.webServer>\r\n</configuration>\r\n";
    assert_eq!(transformed(source, &transform), expected);
}

#[test]
fn inline_inserted_children_get_lines_of_their_own() {
    let source = "<c>\n  <s>\n    <x/>\n  </s>\n</c>";
    let transform = format!("<c {XDT}><s><a xdt:Transform=\"Insert\"><b/><d>text</d></a></s></c>");
    let expected = "<c>\n  <s>\n    <x/>\n    <a>\n      <b/>\n      <d>text</d>\n    </a>\n  </s>\n</c>";
    assert_eq!(transformed(source, &transform), expected);
}

#[test]
fn insert_before_and_after_an_element_an_xpath_selects() {
    let source = "<configuration>\n  <system.web>\n    <authentication mode=\"Windows\" />\n    <authorization />\n  </system.web>\n</configuration>\n";
    let transform = format!(
        "<configuration {XDT}>\n  <system.web>\n    <deny users=\"?\" xdt:Transform=\"InsertBefore(/configuration/system.web/authorization)\" />\n    <allow roles=\"Admins\" xdt:Transform=\"InsertAfter(authentication)\" />\n    <trace enabled=\"false\" xdt:Transform=\"InsertAfter(/configuration/system.web/authorization)\" />\n  </system.web>\n</configuration>\n"
    );
    let expected = "<configuration>\n  <system.web>\n    <authentication mode=\"Windows\" />\n    <allow roles=\"Admins\"/>\n    <deny users=\"?\"/>\n    <authorization />\n    <trace enabled=\"false\"/>\n  </system.web>\n</configuration>\n";
    assert_eq!(transformed(source, &transform), expected);
}

#[test]
fn insert_after_the_last_child_with_no_whitespace_puts_the_end_tag_on_its_line() {
    let source = "<c>\n  <s><a/></s>\n</c>";
    let transform = format!("<c {XDT}><s><b xdt:Transform=\"InsertAfter(a)\"/></s></c>");
    assert_eq!(transformed(source, &transform), "<c>\n  <s><a/>\n    <b/>\n  </s>\n</c>");
}

#[test]
fn insert_if_missing_inserts_once() {
    let source = "<c>\n  <s>\n    <a k=\"1\"/>\n  </s>\n</c>";
    let transform = format!(
        "<c {XDT}>\n  <s>\n    <a k=\"1\" xdt:Transform=\"InsertIfMissing\" xdt:Locator=\"Match(k)\"/>\n    <a k=\"2\" xdt:Transform=\"InsertIfMissing\" xdt:Locator=\"Match(k)\"/>\n    <a k=\"2\" xdt:Transform=\"InsertIfMissing\" xdt:Locator=\"Match(k)\"/>\n  </s>\n</c>"
    );
    assert_eq!(transformed(source, &transform), "<c>\n  <s>\n    <a k=\"1\"/>\n    <a k=\"2\"/>\n  </s>\n</c>");
}

#[test]
fn remove_takes_the_line_the_element_was_on() {
    let source = "<configuration>\n  <system.web>\n    <customErrors mode=\"Off\" />\n    <compilation debug=\"true\" />\n  </system.web>\n  <!-- keep -->\n  <appSettings>\n    <add key=\"a\" />\n  </appSettings>\n</configuration>\n";
    let transform = format!(
        "<configuration {XDT}>\n  <system.web>\n    <customErrors xdt:Transform=\"Remove\" />\n  </system.web>\n  <appSettings>\n    <add xdt:Transform=\"Remove\" />\n  </appSettings>\n</configuration>\n"
    );
    let expected = "<configuration>\n  <system.web>\n    <compilation debug=\"true\" />\n  </system.web>\n  <!-- keep -->\n  <appSettings>\n  </appSettings>\n</configuration>\n";
    assert_eq!(transformed(source, &transform), expected);
}

#[test]
fn remove_applies_to_the_first_match_and_warns_remove_all_to_every_one() {
    let source = "<c>\n  <a/>\n  <a/>\n  <b/>\n  <b/>\n  <b/>\n</c>";
    let transform = format!("<c {XDT}>\n  <a xdt:Transform=\"Remove\"/>\n  <b xdt:Transform=\"RemoveAll\"/>\n</c>");
    let applied = run(source, &transform);
    assert_eq!(applied.text, "<c>\n  <a/>\n</c>");
    assert_eq!(
        texts(&applied, Severity::Warning),
        ["Found multiple target elements, but the 'Remove' Transform only applies to the first match"]
    );
    assert_eq!(texts(&applied, Severity::Message).iter().filter(|m| m.as_str() == "Removed 'b' element").count(), 3);
}

#[test]
fn replace_puts_the_transform_element_in_place() {
    let source = "<configuration>\n  <connectionStrings>\n    <add name=\"db\" connectionString=\"dev\" />\n    <add name=\"other\" connectionString=\"x\" />\n  </connectionStrings>\n</configuration>";
    let transform = format!(
        "<configuration {XDT}>\n  <connectionStrings>\n    <add name=\"db\" connectionString=\"Server=prod;Database=app\" providerName=\"System.Data.SqlClient\" xdt:Transform=\"Replace\" xdt:Locator=\"Match(name)\">\n      <!-- prod -->\n    </add>\n  </connectionStrings>\n</configuration>"
    );
    let expected = "<configuration>\n  <connectionStrings>\n    <add name=\"db\" connectionString=\"Server=prod;Database=app\" providerName=\"System.Data.SqlClient\">\n      <!-- prod -->\n    </add>\n    <add name=\"other\" connectionString=\"x\" />\n  </connectionStrings>\n</configuration>";
    let applied = run(source, &transform);
    assert_eq!(applied.text, expected);
    assert!(texts(&applied, Severity::Message).contains(&"Replaced 'add' element".to_string()));
}

#[test]
fn long_start_tags_of_new_elements_wrap_before_column_160() {
    let source = "<c>\n  <s>\n    <add name=\"a\" x=\"1\" />\n  </s>\n</c>";
    let long = "Joe, the great provider of data who will provide your data for you, whatever the weather and however big it is!";
    let transform = format!(
        "<c {XDT}><s><add name=\"a\" connectionString=\"Just ask Joe\" providerName=\"{long}\" xdt:Transform=\"Replace\" xdt:Locator=\"Match(name)\"/></s></c>"
    );
    // No sibling spans lines: the wrap indents one step past the element's level.
    let expected = format!(
        "<c>\n  <s>\n    <add name=\"a\" connectionString=\"Just ask Joe\"\n      providerName=\"{long}\"/>\n  </s>\n</c>"
    );
    assert_eq!(transformed(source, &transform), expected);
}

#[test]
fn set_attributes_adds_on_the_same_line_or_one_per_line_as_the_tag_does() {
    let source = "<c>\n  <s>\n    <a  name=\"one\"   x=\"1\" />\n    <a  name=\"two\"\n        x=\"2\" />\n    <a  name=\"three\" x=\"3\"\n        y=\"3\" />\n  </s>\n</c>";
    let transform = format!(
        "<c {XDT}>\n  <s>\n    <a name=\"one\" foo=\"f\" xdt:Transform=\"SetAttributes(foo)\" xdt:Locator=\"Match(name)\"/>\n    <a name=\"two\" foo=\"f\" xdt:Transform=\"SetAttributes(foo)\" xdt:Locator=\"Match(name)\"/>\n    <a name=\"three\" foo=\"f\" xdt:Transform=\"SetAttributes(foo)\" xdt:Locator=\"Match(name)\"/>\n  </s>\n</c>"
    );
    let expected = "<c>\n  <s>\n    <a  name=\"one\"   x=\"1\" foo=\"f\" />\n    <a  name=\"two\"\n        x=\"2\"\n        foo=\"f\" />\n    <a  name=\"three\" x=\"3\"\n        y=\"3\" foo=\"f\" />\n  </s>\n</c>";
    assert_eq!(transformed(source, &transform), expected);
}

#[test]
fn set_attributes_escapes_values_for_the_quotes_in_use() {
    let source = "<c><a v='x' /></c>";
    let transform = format!("<c {XDT}><a v=\"it's &lt;&amp;&gt; &quot;q&quot;\" xdt:Transform=\"SetAttributes\"/></c>");
    assert_eq!(transformed(source, &transform), "<c><a v='it&apos;s &lt;&amp;&gt; \"q\"' /></c>");
}

#[test]
fn remove_attributes_moves_whitespace_as_the_reference_does() {
    let source = "<c>\n  <a  name=\"r1\"   x=\"1\"    y=\"2\" />\n  <a  name=\"r2\"   \n      x=\"1\"    y=\"2\" />\n  <a  name=\"r3\"   x=\"1\"    \n   y=\"2\" />\n  <a  name=\"r4\" x=\"1\" />\n</c>";
    let transform = format!(
        "<c {XDT}>\n  <a name=\"r1\" xdt:Transform=\"RemoveAttributes(name)\" xdt:Locator=\"Match(name)\"/>\n  <a name=\"r2\" xdt:Transform=\"RemoveAttributes(x)\" xdt:Locator=\"Match(name)\"/>\n  <a name=\"r3\" xdt:Transform=\"RemoveAttributes(x)\" xdt:Locator=\"Match(name)\"/>\n  <a name=\"r4\" xdt:Transform=\"RemoveAttributes\" xdt:Locator=\"Match(name)\"/>\n</c>"
    );
    // r1: the first attribute's space stays. r2: the removed attribute's line break moves
    // to the next one. r3: the next one keeps its own line break. r4: all gone.
    let expected = "<c>\n  <a  x=\"1\"    y=\"2\" />\n  <a  name=\"r2\"   \n      y=\"2\" />\n  <a  name=\"r3\"    \n   y=\"2\" />\n  <a/>\n</c>";
    assert_eq!(transformed(source, &transform), expected);
}

#[test]
fn locators_condition_and_xpath() {
    let source = "<c>\n  <add key=\"a\" value=\"1\"/>\n  <add key=\"b\" value=\"2\"/>\n  <add key=\"c\" value=\"3\"/>\n  <deep><x v=\"0\"/></deep>\n</c>";
    let transform = format!(
        "<c {XDT}>\n  <add value=\"x\" xdt:Transform=\"SetAttributes(value)\" xdt:Locator=\"Condition(@key='a' or @key='c')\"/>\n  <add xdt:Transform=\"Remove\" xdt:Locator=\"XPath(/c/add[@key='b'])\"/>\n  <deep v=\"9\" xdt:Transform=\"SetAttributes(v)\" xdt:Locator=\"XPath(x)\"/>\n</c>"
    );
    let expected =
        "<c>\n  <add key=\"a\" value=\"x\"/>\n  <add key=\"c\" value=\"x\"/>\n  <deep><x v=\"9\"/></deep>\n</c>";
    let applied = run(source, &transform);
    assert_eq!(applied.text, expected);
    let messages = texts(&applied, Severity::Message);
    for on in ["on /c/add[@key='a' or @key='c']", "on /c/add[@key='b']", "on /c/deep/x"] {
        assert!(messages.contains(&on.to_string()), "{on} in {messages:#?}");
    }
}

#[test]
fn a_transform_that_matches_nothing_warns_naming_the_highest_element_that_did_not_match() {
    let source = "<configuration>\n  <appSettings>\n    <add key=\"OldName\"/>\n  </appSettings>\n</configuration>";
    let transform = "<?xml version=\"1.0\"?>\n<configuration xmlns:xct=\"http://schemas.microsoft.com/XML-Document-Transform\">\n  <appSettings>\n    <add key=\"NewName\" xct:Locator=\"Condition(@key='Missing')\" xct:Transform=\"SetAttributes(key)\" />\n  </appSettings>\n  <system.web>\n    <compilation xct:Transform=\"Remove\" />\n  </system.web>\n</configuration>".to_string();
    let applied = run(source, &transform);
    assert_eq!(applied.text, source);
    assert!(!applied.logged_errors);
    let warnings: Vec<&Event> = applied.events.iter().filter(|e| e.severity == Severity::Warning).collect();
    assert_eq!(warnings.len(), 2);
    assert_eq!(
        warnings[0].text,
        "No element in the source document matches '/configuration/appSettings/add[@key='Missing']'"
    );
    assert_eq!(warnings[0].location, Some(Location { file: "Web.Release.config".into(), line: 4, column: 6 }));
    assert_eq!(warnings[1].text, "No element in the source document matches '/configuration/system.web'");
    let column = transform.lines().nth(3).unwrap().find("xct:Transform").unwrap() + 1;
    let not_executing = format!("Not executing SetAttributes (transform line 4, {column})");
    assert!(texts(&applied, Severity::Message).contains(&not_executing));
}

#[test]
fn a_target_removed_by_an_earlier_transform_says_so() {
    let source = "<c>\n  <a k=\"1\"/>\n</c>";
    let transform =
        format!("<c {XDT}>\n  <a xdt:Transform=\"Remove\"/>\n  <a k=\"2\" xdt:Transform=\"SetAttributes\"/>\n</c>");
    let applied = run(source, &transform);
    assert_eq!(
        texts(&applied, Severity::Warning),
        [
            "'/c/a' did not find a match, because matching nodes in the source document were modified or removed by a previous transform"
        ]
    );
}

#[test]
fn insert_without_its_parent_is_an_error() {
    let source = "<configuration/>";
    let transform = format!(
        "<configuration {XDT}>\n  <system.webServer>\n    <x xdt:Transform=\"Insert\"/>\n  </system.webServer>\n</configuration>"
    );
    let applied = run(source, &transform);
    assert!(applied.logged_errors);
    assert_eq!(applied.text, source);
    let errors: Vec<&Event> = applied.events.iter().filter(|e| e.severity == Severity::Error).collect();
    assert_eq!(errors[0].text, "No element in the source document matches '/configuration/system.webServer/x'");
    assert_eq!(errors[0].location.as_ref().map(|l| (l.line, l.column)), Some((3, 6)));
    assert!(texts(&applied, Severity::Message).contains(&"Not executing Insert (transform line 3, 8)".to_string()));
}

#[test]
fn malformed_transforms_and_locators_are_errors_naming_where() {
    let cases: &[(&str, &str)] = &[
        ("<a xdt:Transform=\"Frobnicate\"/>", "Could not resolve 'Frobnicate' as a type of Transform"),
        ("<a xdt:Transform=\"Set Attributes\"/>", locator::BAD_ATTRIBUTE_VALUE),
        ("<a xdt:Transform=\"Remove\" xdt:Locator=\"Near(x)\"/>", "Could not resolve 'Near' as a type of Locator"),
        (
            "<a xdt:Transform=\"Remove\" xdt:Locator=\"Match(missing)\"/>",
            "No attribute 'missing' exists for the Match Locator",
        ),
        ("<a xdt:Transform=\"Remove\" xdt:Locator=\"Condition(@k='x,y')\"/>", "Condition requires exactly 1 arguments"),
        ("<a xdt:Transform=\"InsertAfter\"/>", "InsertAfter requires an XPath argument"),
        ("<a xdt:Transform=\"InsertAfter(x, y)\"/>", "Too many arguments to InsertAfter"),
        ("<a xdt:Transform=\"InsertBefore(/c/none)\"/>", "No element in the source document matches '/c/none'"),
        ("<a xdt:Transform=\"InsertBefore(/c/b/@k)\"/>", "'/c/b/@k' does not evaluate to an element"),
        (
            "<a xdt:Transform=\"Remove\" xdt:Locator=\"XPath(/c/b[)\"/>",
            "The XPath '/c/b[' cannot be evaluated: expected a node test",
        ),
        (
            "<a xdt:Transform=\"SetTokenizedAttributes\"/>",
            "The SetTokenizedAttributes transform is not supported by this Calamari",
        ),
    ];
    let source = "<c>\n  <a k=\"x\"/>\n  <b k=\"y\"/>\n</c>";
    for (element, message) in cases {
        let transform = format!("<c {XDT}>\n  {element}\n</c>");
        let applied = run(source, &transform);
        assert!(applied.logged_errors, "{element}");
        assert_eq!(texts(&applied, Severity::Error), [message.to_string()], "{element}");
        let location = applied.events.iter().find_map(|e| e.location.clone()).expect("a location");
        assert_eq!(location.line, 2, "{element}");
        assert_eq!(applied.text, source, "{element}");
    }
}

#[test]
fn argument_and_attribute_warnings() {
    let source = "<c>\n  <a k=\"x\"/>\n</c>";
    let cases: &[(&str, &[&str])] = &[
        ("<a xdt:Transform=\"Remove(now)\"/>", &["Remove does not expect arguments; ignoring"]),
        (
            "<a z=\"1\" xdt:Transform=\"SetAttributes(y)\"/>",
            &["Argument 'y' did not match any attributes", "No attributes found to set"],
        ),
        ("<a xdt:Transform=\"SetAttributes\"/>", &["No attributes found to set"]),
        (
            "<a xdt:Transform=\"RemoveAttributes(q)\"/>",
            &["Argument 'q' did not match any attributes", "No attributes found to remove"],
        ),
    ];
    for (element, expected) in cases {
        let applied = run(source, &format!("<c {XDT}>\n  {element}\n</c>"));
        assert_eq!(texts(&applied, Severity::Warning), *expected, "{element}");
        assert!(!applied.logged_errors);
    }
    // "No attributes found to remove" points at the target element, in the target file.
    let applied = run(source, &format!("<c {XDT}>\n  <a xdt:Transform=\"RemoveAttributes(q)\"/>\n</c>"));
    let last = applied.events.iter().rfind(|e| e.severity == Severity::Warning).unwrap();
    assert_eq!(last.location, Some(Location { file: "Web.config".into(), line: 2, column: 4 }));
}

#[test]
fn supress_warnings_turns_an_elements_warnings_into_messages() {
    let source = "<c/>";
    let transform = format!(
        "<c {XDT}>\n  <a xdt:Transform=\"Remove\" xdt:SupressWarnings=\"True\"/>\n  <b xdt:Transform=\"Remove\"/>\n</c>"
    );
    let applied = run(source, &transform);
    assert_eq!(texts(&applied, Severity::Warning), ["No element in the source document matches '/c/b'"]);
    assert!(
        texts(&applied, Severity::Message).contains(&"No element in the source document matches '/c/a'".to_string())
    );
}

#[test]
fn a_document_without_the_transform_namespace_changes_nothing() {
    let source = "<c><a/></c>";
    let applied = run(source, "<c><a Transform=\"Remove\"/></c>");
    assert_eq!(applied.text, source);
    assert_eq!(
        texts(&applied, Severity::Message),
        [
            "The expected namespace http://schemas.microsoft.com/XML-Document-Transform was not found in the transform file"
        ]
    );
}

#[test]
fn removing_the_root_leaves_a_document_without_one() {
    let source = "<?xml version=\"1.0\"?>\n\n<configuration>\n  <a/>\n</configuration>\n";
    let applied = run(
        source,
        &format!("<?xml version=\"1.0\"?>\n<configuration {XDT} xdt:Transform=\"Remove\">\n</configuration>\n"),
    );
    assert!(!applied.has_root);
    assert_eq!(applied.text, "<?xml version=\"1.0\"?>\n");
}

#[test]
fn unknown_transform_namespace_elements_warn_and_import_is_fatal() {
    let tf = TransformFile::parse("t.config", format!("<c {XDT}><xdt:Frob/><a/></c>")).unwrap();
    let (events, fatal) = tf.preprocess();
    assert_eq!(events.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(), ["Unknown tag 'xdt:Frob'"]);
    assert!(fatal.is_none());
    let tf =
        TransformFile::parse("t.config", format!("<c {XDT}><xdt:Import assembly=\"x\" namespace=\"y\"/></c>")).unwrap();
    let (_, fatal) = tf.preprocess();
    assert!(fatal.unwrap().text.starts_with("xdt:Import is not supported by this Calamari"));
}

#[test]
fn inserted_elements_are_declared_in_their_namespace_when_the_target_does_not_declare_it() {
    let cases = [
        // Same default namespace in both: no declaration.
        (
            "<c xmlns=\"urn:c\">\n  <s/>\n</c>",
            format!("<c xmlns=\"urn:c\" {XDT}><s><a xdt:Transform=\"Insert\"/></s></c>"),
            "<c xmlns=\"urn:c\">\n  <s>\n    <a/>\n  </s>\n</c>",
        ),
        // The transform's element is in no namespace, the target's parent in one (which the
        // transform names with a prefix).
        (
            "<c xmlns=\"urn:c\">\n  <s/>\n</c>",
            format!("<p:c xmlns:p=\"urn:c\" {XDT}><p:s><a xdt:Transform=\"Insert\"/></p:s></p:c>"),
            "<c xmlns=\"urn:c\">\n  <s>\n    <a xmlns=\"\"/>\n  </s>\n</c>",
        ),
        // A prefix the target does not declare.
        (
            "<c>\n  <s/>\n</c>",
            format!("<c {XDT} xmlns:p=\"urn:p\"><s><p:a p:x=\"1\" xdt:Transform=\"Insert\"/></s></c>"),
            "<c>\n  <s>\n    <p:a p:x=\"1\" xmlns:p=\"urn:p\"/>\n  </s>\n</c>",
        ),
    ];
    for (source, transform, expected) in cases {
        assert_eq!(transformed(source, &transform), expected, "{transform}");
    }
}

#[test]
fn untouched_bytes_stay_as_they_were() {
    // Comments, CDATA, entities, single quotes, odd spacing, a doctype and a processing
    // instruction, around one changed value.
    let source = "<?xml version='1.0' encoding='utf-8'?>\r\n<!DOCTYPE configuration>\r\n<configuration   a = 'x' >\r\n  <!-- c &amp; -->\r\n  <?pi data?>\r\n  <x><![CDATA[<raw>]]></x>\r\n  <add key='k'   value='&lt;old&gt;'/>\r\n</configuration>";
    let transform = format!(
        "<configuration {XDT}><add key=\"k\" value=\"new\" xdt:Transform=\"SetAttributes(value)\" xdt:Locator=\"Match(key)\"/></configuration>"
    );
    assert_eq!(transformed(source, &transform), source.replace("&lt;old&gt;", "new"));
}

#[test]
fn very_deep_documents_do_not_exhaust_the_stack() {
    // 2,000 levels with no whitespace: every indentation is worked out from the levels
    // above, and the transform document nests as deep.
    let depth = 2_000;
    let source = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth)).replacen("<a></a>", "<a/>", 1);
    let transform = format!(
        "{}<b xdt:Transform=\"Insert\" xdt:Locator=\"XPath(//a[not(a)])\"/>{}",
        format!("<a {XDT}>") + &"<a>".repeat(depth - 1),
        "</a>".repeat(depth)
    );
    let applied = run(&source, &transform);
    assert!(!applied.logged_errors, "{:?}", applied.events.iter().find(|e| e.severity != Severity::Message));
    assert_eq!(applied.text.matches("<b/>").count(), 1);
    assert!(dom::parse(&applied.text).is_ok());
}
