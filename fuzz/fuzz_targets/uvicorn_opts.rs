//! `UVICORN_OPTS` -> uvicorn's extra arguments, through the real environment parser
//! (`Config::from_lookup`). Checks: the words survive a round trip through shell quoting; text
//! without quotes, backslashes or comments splits on blanks exactly; anything refused is reported
//! as `UVICORN_OPTS` with the value given, and nothing else is.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use libfuzzer_sys::fuzz_target;
use vardr_init::config::Config;

fn opts(value: &OsString) -> Result<Vec<String>, Vec<String>> {
    Config::from_lookup(|name| (name == "UVICORN_OPTS").then(|| value.clone()))
        .map(|config| config.app.uvicorn_opts)
        .map_err(|rejected| rejected.errors.iter().map(|e| e.name.to_owned()).collect())
}

fuzz_target!(|data: &[u8]| {
    let value = OsString::from_vec(data.to_vec());
    match opts(&value) {
        Ok(words) => {
            let text = std::str::from_utf8(data).expect("a value that is not UTF-8 was accepted");
            if text.is_empty() {
                assert!(words.is_empty());
            }
            if !text.contains(['\'', '"', '\\', '#']) {
                let blanks: Vec<&str> = text
                    .split([' ', '\t', '\n'])
                    .filter(|w| !w.is_empty())
                    .collect();
                assert_eq!(words, blanks, "plain words not split on blanks");
            }
            // What a user would write to get these words back gives these words back.
            if let Ok(quoted) = shlex::try_join(words.iter().map(String::as_str)) {
                let again = opts(&OsString::from(quoted.clone()));
                assert_eq!(again, Ok(words.clone()), "round trip through {quoted:?}");
            }
        }
        Err(names) => assert_eq!(names, ["UVICORN_OPTS"]),
    }
});
