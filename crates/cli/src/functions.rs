//! Answering the bot's function calls from the command line: `--function NAME=JSON` (a fixed
//! result) and `--function-command NAME=CMD` (a program: the arguments as JSON on stdin, the
//! result from stdout).

use std::process::Stdio;

use pipecat::{FunctionCall, PipecatClient};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// How one function is answered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FunctionAnswer {
    /// Always this result.
    Fixed(Value),
    /// Run `sh -c CMD`: the call's arguments as JSON on stdin; stdout is the result (JSON, or
    /// else the text); a failing exit is an error result with stderr's text.
    Command(String),
}

/// `NAME=VALUE`, with a non-empty name.
fn split_named(text: &str, what: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME={what}")),
    }
}

/// Parses `--function NAME=JSON`.
pub(crate) fn parse_fixed(text: &str) -> Result<(String, FunctionAnswer), String> {
    let (name, json) = split_named(text, "JSON")?;
    let value = serde_json::from_str(&json).map_err(|e| {
        format!("invalid JSON after `{name}=` ({e}); quote strings: {name}='\"text\"'")
    })?;
    Ok((name, FunctionAnswer::Fixed(value)))
}

/// Parses `--function-command NAME=CMD`.
pub(crate) fn parse_command(text: &str) -> Result<(String, FunctionAnswer), String> {
    let (name, command) = split_named(text, "CMD")?;
    if command.trim().is_empty() {
        return Err(format!("the command for {name} is empty"));
    }
    Ok((name, FunctionAnswer::Command(command)))
}

/// Registers a handler per function. The client's function-call timeout bounds each call; a
/// command still running then is killed.
pub(crate) fn register(client: &PipecatClient, functions: &[(String, FunctionAnswer)]) {
    for (name, answer) in functions {
        match answer.clone() {
            FunctionAnswer::Fixed(value) => {
                client.register_function_call_handler(name.clone(), move |_call: FunctionCall| {
                    let value = value.clone();
                    async move { Ok::<_, String>(value) }
                });
            }
            FunctionAnswer::Command(command) => {
                client.register_function_call_handler(name.clone(), move |call: FunctionCall| {
                    let command = command.clone();
                    async move { run_command(&command, &call.arguments).await }
                });
            }
        }
    }
}

/// The most of a command's output kept (a result is a small JSON document).
const MAX_OUTPUT: usize = 1024 * 1024;

/// Runs one command for one call.
async fn run_command(command: &str, arguments: &Value) -> Result<Value, String> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A call that times out drops this future: the program goes with it.
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("could not run {command:?}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A program that does not read its input is fine.
        let _ = stdin.write_all(arguments.to_string().as_bytes()).await;
    }
    let output = child.wait_with_output().await.map_err(|e| format!("{command:?}: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("{command:?} failed ({}): {}", output.status, stderr.trim()));
    }
    if output.stdout.len() > MAX_OUTPUT {
        return Err(format!("{command:?} printed more than {MAX_OUTPUT} bytes"));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let text = text.trim();
    Ok(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flags_parse_to_named_answers() {
        assert_eq!(
            parse_fixed(r#"get_weather={"temp":21}"#).unwrap(),
            ("get_weather".into(), FunctionAnswer::Fixed(json!({"temp": 21})))
        );
        assert!(parse_fixed("get_weather=not json").unwrap_err().contains("invalid JSON"));
        assert!(parse_fixed("=1").is_err());
        assert!(parse_fixed("no_equals").is_err());
        assert_eq!(
            parse_command("lookup=jq .city").unwrap(),
            ("lookup".into(), FunctionAnswer::Command("jq .city".into()))
        );
        assert!(parse_command("lookup=  ").is_err());
    }

    #[tokio::test]
    async fn a_command_reads_the_arguments_and_answers_with_its_output() {
        let args = json!({"city": "Oslo"});
        // JSON output is the result as JSON.
        assert_eq!(
            run_command(r#"read line; echo "{\"got\": $line}""#, &args).await.unwrap(),
            json!({"got": {"city": "Oslo"}})
        );
        // Anything else is text.
        assert_eq!(run_command("echo sunny", &args).await.unwrap(), json!("sunny"));
        // A failing command is an error result with its stderr.
        let err = run_command("echo nope >&2; exit 3", &args).await.unwrap_err();
        assert!(err.contains("nope") && err.contains('3'), "{err}");
    }
}
