//! Client-side function calls: handlers the bot's LLM can call, and the guarantee that every
//! dispatched call is answered with `llm-function-call-result`.

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;

/// A function call the bot asks the client to run.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionCall {
    /// The function's name.
    pub function_name: String,
    /// The call id; the result carries it back.
    pub tool_call_id: String,
    /// The arguments (`{}` when the bot sent none).
    pub arguments: Value,
}

/// How a handler ended. Whatever the outcome, a result was sent to the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FunctionCallOutcome {
    /// The handler returned a value; it was sent as the result.
    Completed,
    /// The handler returned an error; `{"error": message}` was sent.
    Failed(String),
    /// The handler panicked; `{"error": ...}` was sent.
    Panicked(String),
    /// The handler did not finish within the limit; it was aborted and `{"error": ...}` was
    /// sent.
    TimedOut(Duration),
}

/// An async function-call handler.
///
/// Implemented for every `Fn(FunctionCall) -> impl Future<Output = Result<T, E>>` where `T`
/// serialises to JSON and `E` displays: a closure or an `async fn` is a handler.
///
/// ```
/// use pipecat_core::FunctionCall;
/// # fn register(_: impl pipecat_core::FunctionCallHandler) {}
/// register(|call: FunctionCall| async move {
///     let city = call.arguments["city"].as_str().unwrap_or("nowhere").to_owned();
///     Ok::<_, String>(serde_json::json!({ "city": city, "temp": 21 }))
/// });
/// ```
pub trait FunctionCallHandler: Send + Sync + 'static {
    /// Runs the call; `Err` becomes an error result.
    fn call(&self, call: FunctionCall) -> BoxFuture<'static, Result<Value, String>>;
}

impl<F, Fut, T, E> FunctionCallHandler for F
where
    F: Fn(FunctionCall) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    T: Serialize,
    E: Display,
{
    fn call(&self, call: FunctionCall) -> BoxFuture<'static, Result<Value, String>> {
        let future = self(call);
        Box::pin(async move {
            match future.await {
                Ok(value) => serde_json::to_value(value)
                    .map_err(|e| format!("the handler's result is not JSON: {e}")),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}

/// The registered handlers.
#[derive(Default)]
pub(crate) struct Registry {
    named: HashMap<String, Arc<dyn FunctionCallHandler>>,
    catch_all: Option<Arc<dyn FunctionCallHandler>>,
}

impl Registry {
    pub(crate) fn register(&mut self, name: String, handler: Arc<dyn FunctionCallHandler>) {
        self.named.insert(name, handler);
    }

    pub(crate) fn unregister(&mut self, name: &str) -> bool {
        self.named.remove(name).is_some()
    }

    pub(crate) fn set_catch_all(&mut self, handler: Option<Arc<dyn FunctionCallHandler>>) {
        self.catch_all = handler;
    }

    pub(crate) fn clear(&mut self) {
        self.named.clear();
        self.catch_all = None;
    }

    /// The handler for `name`: its own, else the catch-all.
    pub(crate) fn lookup(&self, name: &str) -> Option<Arc<dyn FunctionCallHandler>> {
        self.named.get(name).or(self.catch_all.as_ref()).cloned()
    }
}

/// Aborts a spawned task when dropped (a timed-out handler, an ended session).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The `{"error": ...}` result sent when a handler does not produce one.
pub(crate) fn error_result(message: &str) -> Value {
    serde_json::json!({ "error": message })
}

/// Runs `handler` as its own task (so a panic is caught as a `JoinError`), bounded by
/// `limit`, and returns the result to send with how the handler ended.
pub(crate) async fn run_handler(
    handler: Arc<dyn FunctionCallHandler>,
    call: FunctionCall,
    limit: Duration,
) -> (Value, FunctionCallOutcome) {
    // Calling the handler inside the task catches panics in its synchronous part too.
    let mut task = AbortOnDrop(tokio::spawn(async move { handler.call(call).await }));
    match tokio::time::timeout(limit, &mut task.0).await {
        Ok(Ok(Ok(value))) => (value, FunctionCallOutcome::Completed),
        Ok(Ok(Err(message))) => (error_result(&message), FunctionCallOutcome::Failed(message)),
        Ok(Err(join)) => {
            let message = if join.is_panic() {
                panic_message(join.into_panic())
            } else {
                "the handler task was cancelled".to_owned()
            };
            let text = format!("function call handler panicked: {message}");
            (error_result(&text), FunctionCallOutcome::Panicked(message))
        }
        Err(_) => {
            let text = format!("function call handler timed out after {limit:?}");
            (error_result(&text), FunctionCallOutcome::TimedOut(limit))
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> FunctionCall {
        FunctionCall {
            function_name: "f".into(),
            tool_call_id: "t".into(),
            arguments: serde_json::json!({}),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn outcomes() {
        let ok: Arc<dyn FunctionCallHandler> =
            Arc::new(|_c: FunctionCall| async { Ok::<_, String>(42) });
        assert_eq!(
            run_handler(ok, call(), Duration::from_secs(1)).await,
            (serde_json::json!(42), FunctionCallOutcome::Completed)
        );

        let failing: Arc<dyn FunctionCallHandler> =
            Arc::new(|_c: FunctionCall| async { Err::<Value, _>("no") });
        assert_eq!(
            run_handler(failing, call(), Duration::from_secs(1)).await,
            (serde_json::json!({"error": "no"}), FunctionCallOutcome::Failed("no".into()))
        );

        let panicking: Arc<dyn FunctionCallHandler> = Arc::new(|_c: FunctionCall| async {
            if true {
                panic!("kaboom");
            }
            Ok::<Value, String>(Value::Null)
        });
        let (result, outcome) = run_handler(panicking, call(), Duration::from_secs(1)).await;
        assert_eq!(outcome, FunctionCallOutcome::Panicked("kaboom".into()));
        assert_eq!(result, serde_json::json!({"error": "function call handler panicked: kaboom"}));

        let slow: Arc<dyn FunctionCallHandler> = Arc::new(|_c: FunctionCall| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, String>(1)
        });
        let (result, outcome) = run_handler(slow, call(), Duration::from_secs(2)).await;
        assert_eq!(outcome, FunctionCallOutcome::TimedOut(Duration::from_secs(2)));
        assert_eq!(
            result,
            serde_json::json!({"error": "function call handler timed out after 2s"})
        );
    }

    #[test]
    fn lookup_prefers_named_then_catch_all() {
        let mut registry = Registry::default();
        assert!(registry.lookup("a").is_none());
        registry.set_catch_all(Some(Arc::new(|_c: FunctionCall| async { Ok::<_, String>(0) })));
        assert!(registry.lookup("a").is_some());
        registry.register("a".into(), Arc::new(|_c: FunctionCall| async { Ok::<_, String>(1) }));
        assert!(registry.unregister("a"));
        assert!(!registry.unregister("a"));
        registry.clear();
        assert!(registry.lookup("a").is_none());
    }
}
