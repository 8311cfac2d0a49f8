//! The template renderer against the real `agentry --render-helper` processes: prompts come
//! back, and a template that runs out of memory or time, or a helper killed from outside,
//! costs that one rendering and nothing else.

use std::time::Instant;

use agentry::prompt::helper::HELLO;
use agentry::prompt::{RenderError, Renderer};
use serde_json::json;

fn renderer(helpers: usize) -> Renderer {
    Renderer::new(env!("CARGO_BIN_EXE_agentry").into(), helpers)
}

#[tokio::test]
async fn renders_the_prompt_and_the_template_errors() {
    let renderer = renderer(2);
    let input = json!({"text": "hi", "items": [1, "two"]});
    assert_eq!(
        renderer.render("{{ text }}: {{ items }}", &input).await,
        Ok("hi: [1, \"two\"]".to_owned())
    );
    let err = renderer.render("{{ missing }}", &input).await.unwrap_err();
    assert!(
        matches!(&err, RenderError::Template(why) if why.contains("undefined")),
        "{err}"
    );
    // Many renderings, concurrently, through two helpers.
    let many = (0..64).map(|i| {
        let renderer = &renderer;
        async move { renderer.render("#{{ n }}", &json!({"n": i})).await }
    });
    let results = futures_util::future::join_all(many).await;
    for (i, result) in results.into_iter().enumerate() {
        assert_eq!(result, Ok(format!("#{i}")));
    }
}

#[tokio::test]
async fn a_template_past_the_memory_limit_or_the_deadline_is_refused_and_the_next_renders() {
    let renderer = renderer(1);
    let input = json!({"items": [1, 2, 3]});
    let table = [
        (
            "{% set ns = namespace(s='0123456789abcdef') %}{% for i in range(64) %}\
             {% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
            "needs more than 256 MiB of memory",
        ),
        (
            "{{ (items * 10**8) | list | length }}",
            "needs more than 256 MiB of memory",
        ),
        ("{{ 5 in items * 10**9 }}", "takes more than 2 s to render"),
    ];
    for (template, reason) in table {
        let err = renderer.render(template, &input).await.unwrap_err();
        assert!(
            matches!(&err, RenderError::Template(why) if why.contains(reason)),
            "{template}: {err}"
        );
        assert_eq!(
            renderer.render("{{ items | length }}", &input).await,
            Ok("3".to_owned()),
            "after {template}"
        );
    }
}

#[tokio::test]
async fn a_helper_killed_while_idle_is_replaced_without_failing_a_rendering() {
    let renderer = renderer(1);
    assert_eq!(renderer.render("a", &json!({})).await, Ok("a".to_owned()));
    let pids = renderer.idle_helpers();
    assert_eq!(pids.len(), 1);
    let killed = std::process::Command::new("kill")
        .args(["-9", &pids[0].to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Until the kernel has ended it, the helper may still look alive: wait for that.
    let dead = format!("/proc/{}/stat", pids[0]);
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_to_string(&dead).is_ok_and(|stat| !stat.contains(") Z ")) {
        assert!(Instant::now() < deadline, "helper {} did not die", pids[0]);
        tokio::task::yield_now().await;
    }
    assert_eq!(renderer.render("b", &json!({})).await, Ok("b".to_owned()));
    assert_ne!(renderer.idle_helpers(), pids);
}

/// The helper's own protocol, as the server speaks it: hello first, one reply per line,
/// and it exits when its input closes.
#[test]
fn the_helper_says_hello_answers_and_exits_at_end_of_input() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .arg("--render-helper")
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(
        stdin,
        r#"{{"template": "Hi {{{{ name }}}}", "input": {{"name": "Ada"}}}}"#
    )
    .unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{out:?} after {:?}",
        started.elapsed()
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, [HELLO, r#"{"Ok":"Hi Ada"}"#]);
}

#[tokio::test]
async fn a_program_that_is_not_the_helper_is_refused_with_a_reason() {
    for program in ["/bin/true", "/nonexistent/agentry"] {
        let renderer = Renderer::new(program.into(), 1);
        let err = renderer.render("{{ 1 }}", &json!({})).await.unwrap_err();
        assert!(
            matches!(&err, RenderError::Unavailable(why) if why.contains("the template renderer does not start")),
            "{program}: {err}"
        );
    }
}
