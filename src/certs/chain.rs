//! Python 3.12 and older (no `VERIFY_X509_PARTIAL_CHAIN`) trust a CA that is not self-signed only
//! through its chain: OpenSSL must find its issuer in the trust store, up to a self-signed root,
//! and then checks each signature below the root (security level 2 digests) and that each
//! certificate below the root is a CA by basicConstraints. The store is the bundle: the other
//! accepted custom CAs, and the system bundle (read only when a custom CA needs an issuer).

use super::bundle;
use super::rules::{self, Link, Profile, Rule, Scope};
use super::verdict::{Reason, Verdict};

/// Longer than any real chain; ends a loop of cross-signed names.
const MAX_DEPTH: usize = 8;

/// Rejects each accepted file holding a CA that has no chain to a root in the bundle, until no
/// more change (a rejected CA can no longer be an issuer).
pub fn require_roots(files: &mut [Verdict], system: Option<&[u8]>, profile: Profile) {
    let mut system_links: Option<Vec<Link>> = None;
    loop {
        let pool: Vec<Link> = files
            .iter()
            .filter_map(|v| match v {
                Verdict::Accepted(cas) => Some(cas.iter().map(|ca| ca.link.clone())),
                Verdict::Rejected(_) => None,
            })
            .flatten()
            .collect();
        let mut changed = false;
        for verdict in files.iter_mut() {
            let Verdict::Accepted(cas) = verdict else {
                continue;
            };
            let broken = cas.iter().enumerate().find_map(|(i, ca)| {
                if ca.link.self_signed {
                    return None;
                }
                let system = system_links.get_or_insert_with(|| links(system));
                rooted(&ca.link, &pool, system, profile)
                    .err()
                    .map(|rule| (i, ca.subject.clone(), rule))
            });
            if let Some((i, subject, rule)) = broken {
                *verdict = Verdict::Rejected(match rule {
                    Rule::NotCa(why) => Reason::NotCa {
                        index: i + 1,
                        subject,
                        why,
                    },
                    rule => Reason::Refused {
                        index: i + 1,
                        subject,
                        rule,
                    },
                });
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
}

/// Walks up from `link` to a self-signed issuer in `pool` or `system`.
fn rooted(link: &Link, pool: &[Link], system: &[Link], profile: Profile) -> Result<(), Rule> {
    let mut current = link;
    for _ in 0..MAX_DEPTH {
        if current.self_signed {
            return Ok(());
        }
        let Some(issuer) = pool
            .iter()
            .chain(system)
            .find(|candidate| *candidate != current && current.issued_by(candidate))
        else {
            return Err(Rule::NoIssuer(current.issuer_text.clone()));
        };
        // Below the root now: its signature is checked, and it must be a CA by basicConstraints.
        if let Some(digest) = &current.weak_digest
            && profile.enforces(Scope::SecurityLevel2)
        {
            return Err(Rule::WeakDigest(digest.clone()));
        }
        if !current.strict_ca {
            return Err(Rule::NotCa(
                "below its root it must have basicConstraints CA:TRUE (OpenSSL applies strict \
                 CA checks to intermediates)"
                    .to_owned(),
            ));
        }
        current = issuer;
    }
    Err(Rule::NoIssuer(current.issuer_text.clone()))
}

/// The chain facts of the system bundle's certificates (those that parse).
fn links(system: Option<&[u8]>) -> Vec<Link> {
    let Some(bytes) = system else {
        return Vec::new();
    };
    bundle::certificates(bytes)
        .filter_map(|der| {
            let (_, cert) = rules::parse(&der).ok()?;
            Some(rules::link(&cert, &der))
        })
        .collect()
}
