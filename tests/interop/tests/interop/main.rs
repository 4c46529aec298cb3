//! The SDK against the real pipecat-ai peer bot (`tests/peer_bot/bot.py`), through the public
//! client API, on every pipecat-ai release of [`Release::ALL`]. Each test starts its own bot
//! on a free loopback port and stops it at the end.
//!
//! - `scenarios`: what every transport does, defined once and run over each of them
//!   (`scenarios::<scenario>::<transport>::pipecat_<version>`);
//! - `websocket`, `small_webrtc`: what only one transport has
//!   (`<transport>::<scenario>[::<offer route>]::pipecat_<version>`).
//!
//! A test's name ends with its release, so `cargo test -p pipecat-interop-tests --test interop
//! -- pipecat_1_3_0` runs one release, and `-- websocket::` one transport.

/// One test per pipecat-ai release, named `pipecat_<version>`, each awaiting
/// `$scenario($($arg,)* release)`. Attributes before the path (`#[ignore = ...]`) go on
/// every test. The releases are listed here once; `release_facts` fails to compile when
/// [`Release`] gains one that is not here.
macro_rules! for_each_release {
    ($(#[$meta:meta])* $scenario:path $(, $arg:expr)* $(,)?) => {
        #[tokio::test]
        $(#[$meta])*
        async fn pipecat_1_14_0() {
            $scenario($($arg,)* $crate::common::Release::V1_14_0).await;
        }

        #[tokio::test]
        $(#[$meta])*
        async fn pipecat_1_12_0() {
            $scenario($($arg,)* $crate::common::Release::V1_12_0).await;
        }

        #[tokio::test]
        $(#[$meta])*
        async fn pipecat_1_3_0() {
            $scenario($($arg,)* $crate::common::Release::V1_3_0).await;
        }
    };
}

/// `mod <scenario> { pipecat_<version>... }` for scenarios of the form
/// `async fn(Release)`.
macro_rules! per_release {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            for_each_release!(super::$name);
        }
    )*};
}

mod common;
mod scenarios;
mod small_webrtc;
mod websocket;

mod release_facts {
    use crate::common::Release;

    /// The test name `for_each_release!` gives each release. An exhaustive match: a new
    /// release does not compile until it is added here and to the macro above.
    fn macro_test_name(release: Release) -> &'static str {
        match release {
            Release::V1_14_0 => "pipecat_1_14_0",
            Release::V1_12_0 => "pipecat_1_12_0",
            Release::V1_3_0 => "pipecat_1_3_0",
        }
    }

    #[test]
    fn every_release_has_tests_named_after_it() {
        for release in Release::ALL {
            // What `cargo xtask test-all` filters on, one step per release.
            let expected = format!("pipecat_{}", release.version().replace('.', "_"));
            assert_eq!(macro_test_name(release), expected);
        }
        // No name is part of another: each release's filter selects only its own tests.
        for a in Release::ALL.map(macro_test_name) {
            for b in Release::ALL.map(macro_test_name) {
                assert!(a == b || !b.contains(a), "{a} / {b}");
            }
        }
    }

    #[test]
    fn each_release_has_its_own_venv_and_variable() {
        assert_eq!(Release::DEFAULT, Release::ALL[0]);
        assert_eq!(Release::DEFAULT.python_env(), pipecat_interop_tests::PYTHON_ENV);
        assert_eq!(Release::DEFAULT.venv_dir(), "peer-venv");
        for release in &Release::ALL[1..] {
            let underscored = release.version().replace('.', "_");
            assert_eq!(release.python_env(), format!("PIPECAT_PEER_PYTHON_{underscored}"));
            assert_eq!(release.venv_dir(), format!("peer-venv-{}", release.version()));
        }
    }
}
