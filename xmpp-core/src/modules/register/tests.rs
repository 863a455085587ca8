use super::*;

fn iq(xml: &str) -> Element {
    Element::parse(xml.as_bytes()).expect("test XML")
}

fn parse(xml: &str) -> Option<Result<RegisterRequest, StanzaError>> {
    RegisterRequest::parse(&iq(xml))
}

#[test]
fn parses_the_three_requests() {
    assert_eq!(
        parse(
            "<iq xmlns='jabber:client' type='get' id='1'><query xmlns='jabber:iq:register'/></iq>"
        ),
        Some(Ok(RegisterRequest::Fields))
    );
    assert_eq!(
        parse("<iq xmlns='jabber:client' type='set' id='2'><query xmlns='jabber:iq:register'><username>bill</username><password>Calliope</password></query></iq>"),
        Some(Ok(RegisterRequest::Submit {
            username: Some("bill".into()),
            password: Some("Calliope".into())
        }))
    );
    assert_eq!(
        parse("<iq xmlns='jabber:client' type='set' id='3'><query xmlns='jabber:iq:register'><remove/></query></iq>"),
        Some(Ok(RegisterRequest::Remove))
    );
    // §3.2: <remove/> with anything else is a bad request.
    assert_eq!(
        parse("<iq xmlns='jabber:client' type='set' id='4'><query xmlns='jabber:iq:register'><remove/><username>bill</username></query></iq>"),
        Some(Err(StanzaError::BadRequest))
    );
    // Empty fields read as present-but-empty, missing ones as None.
    assert_eq!(
        parse("<iq xmlns='jabber:client' type='set' id='5'><query xmlns='jabber:iq:register'><username>bill</username><password/></query></iq>"),
        Some(Ok(RegisterRequest::Submit {
            username: Some("bill".into()),
            password: Some(String::new())
        }))
    );
    assert_eq!(
        parse("<iq xmlns='jabber:client' type='get' id='6'><query xmlns='jabber:iq:roster'/></iq>"),
        None
    );
    assert_eq!(
        parse("<iq xmlns='jabber:client' type='result' id='7'><query xmlns='jabber:iq:register'/></iq>"),
        None
    );
}

#[test]
fn a_submitted_form_takes_precedence() {
    let xml = "<iq xmlns='jabber:client' type='set' id='f'><query xmlns='jabber:iq:register'>\
        <username>legacy</username>\
        <x xmlns='jabber:x:data' type='submit'>\
        <field var='FORM_TYPE'><value>jabber:iq:register</value></field>\
        <field var='username'><value>juliet</value></field>\
        <field var='password'><value>balcony!</value></field></x></query></iq>";
    assert_eq!(
        parse(xml),
        Some(Ok(RegisterRequest::Submit {
            username: Some("juliet".into()),
            password: Some("balcony!".into())
        }))
    );
}

#[test]
fn usernames_follow_the_localpart_rules() {
    let ok = account_for(Some("Bill"), "localhost").expect("valid");
    assert_eq!(ok.bare_str(), "bill@localhost", "case-mapped like a login");
    for bad in [
        None,
        Some(""),
        Some("bill@evil"),
        Some("a/b"),
        Some("with space"),
        Some("quote'"),
        Some("<x>"),
    ] {
        let r = account_for(bad, "localhost");
        assert_eq!(
            r.map(|j| j.to_string()).map_err(|r| r.condition),
            Err(StanzaError::NotAcceptable),
            "{bad:?}"
        );
    }
    let long = "a".repeat(1024);
    assert!(account_for(Some(&long), "localhost").is_err());
}

#[test]
fn passwords_must_be_present_allowed_and_long_enough() {
    assert_eq!(check_password(Some("longenough"), 8), Ok("longenough"));
    for (pw, why) in [
        (None, "A password is required."),
        (Some(""), "A password is required."),
        (Some("short"), "The password is too short."),
        (
            Some("bell\u{7}bell\u{7}"),
            "The password contains characters that are not allowed.",
        ),
    ] {
        let r = check_password(pw, 8).expect_err("refused");
        assert_eq!(r.condition, StanzaError::NotAcceptable);
        assert_eq!(r.text, Some(why), "{pw:?}");
    }
    // Characters, not bytes.
    assert!(check_password(Some("ééééééé"), 8).is_err());
    assert!(check_password(Some("éééééééé"), 8).is_ok());
}

#[test]
fn errors_carry_type_text_and_legacy_code_but_not_the_password() {
    let req = iq("<iq xmlns='jabber:client' type='set' id='r2'><query xmlns='jabber:iq:register'><username>bill</username><password>secret-pw</password></query></iq>");
    let e = error(&req, TAKEN, "localhost");
    assert_eq!(e.attr("type"), Some("error"));
    assert_eq!(e.attr("id"), Some("r2"));
    assert_eq!(e.attr("from"), Some("localhost"));
    let err = e.child(crate::ns::CLIENT, "error").expect("error child");
    assert_eq!(err.attr("type"), Some("cancel"));
    assert_eq!(err.attr("code"), Some("409"));
    assert!(err.child(crate::ns::STANZA_ERRORS, "conflict").is_some());
    assert!(!e.to_xml().contains("secret-pw"), "{}", e.to_xml());
    let t = error(&req, THROTTLED, "localhost");
    let err = t.child(crate::ns::CLIENT, "error").expect("error child");
    assert_eq!(err.attr("type"), Some("wait"));
    assert_eq!(err.attr("code"), Some("500"));
    let p = error(&req, ENCRYPTION_REQUIRED, "localhost");
    let err = p.child(crate::ns::CLIENT, "error").expect("error child");
    assert_eq!(
        err.attr("code"),
        None,
        "XEP-0086 has no code for policy-violation"
    );
}

#[test]
fn replies_for_unregistered_and_registered_entities() {
    let get =
        iq("<iq xmlns='jabber:client' type='get' id='g'><query xmlns='jabber:iq:register'/></iq>");
    let f = fields_reply(&get);
    let q = f.child(NS, "query").expect("query");
    assert!(q.child(NS, "username").is_some() && q.child(NS, "password").is_some());
    assert!(q.child(NS, "registered").is_none());
    let r = registered_reply(&get, "bill");
    let q = r.child(NS, "query").expect("query");
    assert!(q.child(NS, "registered").is_some());
    assert_eq!(q.child_text(NS, "username").as_deref(), Some("bill"));
    assert_eq!(q.child_text(NS, "password").as_deref(), Some(""));
}

#[test]
fn account_ops_never_print_the_password() {
    let op = AccountOp::Register {
        account: "bill@localhost".into(),
        password: "hunter2hunter2".into(),
    };
    let shown = format!("{op:?}");
    assert!(
        shown.contains("bill@localhost") && !shown.contains("hunter2"),
        "{shown}"
    );
    assert_eq!(op.account(), "bill@localhost");
}
