//! What a password must be: 8 to 1024 characters, and not one an attacker tries first.
//!
//! Length alone lets "12345678" and "password" through. The rule here is the one current
//! guidance gives (a minimum length plus a check against known-bad choices, no
//! composition rules): a list of the passwords most often seen in breach corpora, long
//! enough to pass the length rule; a single repeated character or a keyboard or
//! counting run ("abcdefgh", "87654321"); and the user name itself, inside or reversed.

/// Passwords of 8 or more characters that lead every published breach frequency list
/// (compared case-insensitively).
const COMMON: &[&str] = &[
    "12345678",
    "123456789",
    "1234567890",
    "12345678910",
    "123123123",
    "123321123",
    "12341234",
    "11223344",
    "1122334455",
    "147258369",
    "159357456",
    "123654789",
    "741852963",
    "987654321",
    "password",
    "password1",
    "password12",
    "password123",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "qwertyuiop",
    "qwerty123",
    "qwerty12",
    "qwer1234",
    "1234qwer",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "q1w2e3r4",
    "q1w2e3r4t5",
    "1qaz2wsx",
    "zaq12wsx",
    "qazwsxedc",
    "123qweasd",
    "asdfghjkl",
    "zxcvbnm1",
    "abcd1234",
    "1234abcd",
    "abc12345",
    "a1b2c3d4",
    "iloveyou",
    "iloveyou1",
    "princess",
    "sunshine",
    "football",
    "baseball",
    "superman",
    "starwars",
    "trustno1",
    "whatever",
    "computer",
    "internet",
    "welcome1",
    "welcome123",
    "letmein1",
    "changeme",
    "admin123",
    "administrator",
    "master123",
    "michael1",
    "jennifer",
    "jordan23",
    "liverpool",
    "chocolate",
    "butterfly",
    "elizabeth",
    "basketball",
    "qwertyui",
    "asdfasdf",
    "samsung1",
];

/// Keyboard rows and counting sequences: a password that is a run along one of these
/// (either way) is refused.
const RUNS: &[&str] = &[
    "0123456789012345678901234567890",
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnm",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
];

/// Why `password` is refused for `username`, or `None` when it is acceptable.
pub(crate) fn weakness(username: &str, password: &str) -> Option<&'static str> {
    let length = password.chars().count();
    if length < 8 || password.len() > 1024 {
        return Some("a password is 8 to 1024 characters long");
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return Some("that password is one of the most common ones; choose another");
    }
    let mut distinct: Vec<char> = lower.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() <= 2 {
        return Some("a password needs more than two different characters");
    }
    let reversed: String = lower.chars().rev().collect();
    if RUNS
        .iter()
        .any(|run| run.contains(&lower) || run.contains(&reversed))
    {
        return Some(
            "a password that is a run along the keyboard or the alphabet is too easy to guess",
        );
    }
    let name = username.to_lowercase();
    if name.chars().count() >= 3 && (lower.contains(&name) || reversed.contains(&name)) {
        return Some("a password may not contain the user name");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_and_guessable_passwords_are_refused() {
        for password in [
            "12345678",
            "Password1",
            "QWERTYUIOP",
            "aaaaaaaaaa",
            "abababab",
            "abcdefghij",
            "87654321",
            "lkjhgfdsa",
            "alice-2024!",
            "ecila-secret",
            "short",
        ] {
            assert!(weakness("alice", password).is_some(), "{password:?}");
        }
    }

    #[test]
    fn ordinary_passwords_pass() {
        for password in [
            "correct horse",
            "tr0ub4dor&3",
            "Maple syrup on Tuesdays",
            "Ümläut-Straße 9",
        ] {
            assert_eq!(weakness("alice", password), None, "{password:?}");
        }
        // a short user name is not looked for inside passwords
        assert_eq!(weakness("al", "always blue sky"), None);
    }

    #[test]
    fn every_common_password_is_long_enough_to_need_the_list() {
        for password in COMMON {
            assert!(
                password.chars().count() >= 8,
                "{password}: the length rule refuses it already"
            );
            assert_eq!(*password, password.to_lowercase());
        }
    }
}
