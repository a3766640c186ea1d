//! A bank as a user state machine: accounts with text commands, the same in every language's
//! example (`examples/{rust,c,python,node}`), so any of them can drive another's bank.
//!
//! Commands: `deposit A N` → A's new balance; `transfer A B N` → A's new balance, refused
//! (`Rejected`, "A has X, short of N") when A has less than N. Queries: `balance A` (0 when
//! absent) and `balances` (`A=N` lines, sorted by account). The snapshot is the `A N` lines.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use journalkeeper::state::{ApplyContext, StateError, StateMachine, io_error};

/// The accounts and their balances.
#[derive(Debug, Default)]
pub struct Bank {
    accounts: BTreeMap<String, i64>,
}

fn refuse(msg: String) -> StateError {
    StateError::Rejected(msg)
}

fn amount(text: &str) -> Result<i64, StateError> {
    match text.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(refuse(format!("{text:?} is not a positive amount"))),
    }
}

impl StateMachine for Bank {
    fn apply(&mut self, _ctx: &ApplyContext, command: &[u8]) -> Result<Vec<u8>, StateError> {
        let text = std::str::from_utf8(command).map_err(|e| refuse(e.to_string()))?;
        match text.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["deposit", a, n] => {
                let n = amount(n)?;
                let balance = self.accounts.entry(a.to_string()).or_default();
                *balance = balance
                    .checked_add(n)
                    .ok_or_else(|| refuse(format!("{a} would overflow")))?;
                Ok(balance.to_string().into_bytes())
            }
            ["transfer", from, to, n] => {
                let n = amount(n)?;
                let have = self.accounts.get(*from).copied().unwrap_or(0);
                if have < n {
                    return Err(refuse(format!("{from} has {have}, short of {n}")));
                }
                let to_balance = self.accounts.get(*to).copied().unwrap_or(0);
                let to_new = to_balance
                    .checked_add(n)
                    .ok_or_else(|| refuse(format!("{to} would overflow")))?;
                self.accounts.insert(from.to_string(), have - n);
                self.accounts.insert(to.to_string(), to_new);
                Ok((have - n).to_string().into_bytes())
            }
            _ => Err(refuse(format!("unknown command {text:?}"))),
        }
    }

    fn query(&self, query: &[u8]) -> Result<Vec<u8>, StateError> {
        let text = std::str::from_utf8(query).unwrap_or("");
        if text == "balances" {
            let lines: String = self
                .accounts
                .iter()
                .map(|(a, b)| format!("{a}={b}\n"))
                .collect();
            return Ok(lines.into_bytes());
        }
        match text.strip_prefix("balance ") {
            Some(a) => Ok(self
                .accounts
                .get(a)
                .copied()
                .unwrap_or(0)
                .to_string()
                .into_bytes()),
            None => Err(StateError::InvalidArgument(format!(
                "unknown query {text:?}"
            ))),
        }
    }

    fn snapshot(&self, out: &mut dyn Write) -> Result<(), StateError> {
        for (a, b) in &self.accounts {
            writeln!(out, "{a} {b}").map_err(|e| io_error("bank snapshot", &e))?;
        }
        Ok(())
    }

    fn restore(&mut self, input: &mut dyn Read) -> Result<(), StateError> {
        let mut text = String::new();
        input
            .read_to_string(&mut text)
            .map_err(|e| io_error("bank snapshot", &e))?;
        let mut accounts = BTreeMap::new();
        for line in text.lines() {
            let parsed = line
                .split_once(' ')
                .and_then(|(a, b)| Some((a.to_string(), b.parse::<i64>().ok()?)));
            let (a, b) = parsed.ok_or_else(|| StateError::Codec {
                what: "bank snapshot".into(),
                reason: format!("bad line {line:?}"),
            })?;
            accounts.insert(a, b);
        }
        self.accounts = accounts;
        Ok(())
    }
}

/// The sum of a `balances` answer.
pub fn total(balances: &str) -> i64 {
    balances
        .lines()
        .filter_map(|l| l.split_once('=')?.1.parse::<i64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ApplyContext {
        ApplyContext {
            index: 1,
            term: 1,
            timestamp_ms: 0,
        }
    }

    #[test]
    fn transfers_move_money_and_short_funds_are_refused_without_a_change() {
        let mut b = Bank::default();
        assert_eq!(b.apply(&ctx(), b"deposit a 10").unwrap(), b"10");
        assert_eq!(b.apply(&ctx(), b"transfer a b 4").unwrap(), b"6");
        let e = b.apply(&ctx(), b"transfer b a 5").unwrap_err();
        assert_eq!(e, StateError::Rejected("b has 4, short of 5".into()));
        assert!(b.apply(&ctx(), b"deposit a -3").is_err());
        assert_eq!(b.query(b"balances").unwrap(), b"a=6\nb=4\n");
        let mut snap = Vec::new();
        b.snapshot(&mut snap).unwrap();
        let mut c = Bank::default();
        c.restore(&mut &snap[..]).unwrap();
        assert_eq!(c.query(b"balances").unwrap(), b"a=6\nb=4\n");
        assert_eq!(total("a=6\nb=4\n"), 10);
    }
}
