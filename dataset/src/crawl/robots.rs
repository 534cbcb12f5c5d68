//! robots.txt rules, after RFC 9309.
//!
//! The crawler keeps the group for its own product token (the user agent up to the
//! first `/`, matched case-insensitively) and falls back to the `*` group. Within the
//! chosen rules the longest matching pattern wins and `Allow` wins a tie; patterns may
//! use `*` (any run of characters) and a final `$` (end of path). An empty `Disallow:`
//! allows everything. A robots.txt answering 4xx means "no rules" (allow all); one that
//! cannot be fetched (5xx, network errors) means "disallow all", as the RFC asks.

/// The rules that apply to one user agent on one host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Robots {
    rules: Vec<Rule>,
    disallow_all: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    allow: bool,
    pattern: String,
}

impl Robots {
    /// No rules: everything allowed (robots.txt missing).
    pub fn allow_all() -> Self {
        Robots::default()
    }

    /// Everything forbidden (robots.txt unreachable).
    pub fn disallow_all() -> Self {
        Robots {
            rules: Vec::new(),
            disallow_all: true,
        }
    }

    /// Parses a robots.txt body for the given user agent.
    pub fn parse(text: &str, user_agent: &str) -> Self {
        let token = product_token(user_agent);
        let groups = parse_groups(text);
        let ours: Vec<&Group> = groups
            .iter()
            .filter(|g| g.agents.iter().any(|a| agent_matches(a, &token)))
            .collect();
        let chosen = if ours.is_empty() {
            groups
                .iter()
                .filter(|g| g.agents.iter().any(|a| a == "*"))
                .collect()
        } else {
            ours
        };
        let rules = chosen
            .into_iter()
            .flat_map(|g| g.rules.iter().cloned())
            .collect();
        Robots {
            rules,
            disallow_all: false,
        }
    }

    /// Whether a URL path (with its query, as sent) may be requested.
    pub fn allows(&self, path_and_query: &str) -> bool {
        if self.disallow_all {
            return false;
        }
        // Longest pattern wins; on equal length Allow wins (`true > false`).
        self.rules
            .iter()
            .filter(|rule| {
                !rule.pattern.is_empty() && pattern_matches(&rule.pattern, path_and_query)
            })
            .max_by_key(|rule| (rule.pattern.len(), rule.allow))
            .is_none_or(|rule| rule.allow)
    }
}

/// `smart-album-crawler/0.1 (+info)` → `smart-album-crawler`.
fn product_token(user_agent: &str) -> String {
    user_agent
        .split(['/', ' '])
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn agent_matches(agent: &str, token: &str) -> bool {
    agent != "*" && !agent.is_empty() && (agent == token || token.starts_with(agent))
}

#[derive(Debug, Default)]
struct Group {
    /// Lower-case user-agent values.
    agents: Vec<String>,
    rules: Vec<Rule>,
}

/// Splits the file into groups: consecutive `User-agent` lines start one, the rules
/// after them belong to it. Unknown lines (Sitemap, Crawl-delay, comments) are skipped.
fn parse_groups(text: &str) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut in_agent_lines = false;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
        match key.as_str() {
            "user-agent" => {
                if !in_agent_lines {
                    groups.push(Group::default());
                }
                in_agent_lines = true;
                if let Some(group) = groups.last_mut() {
                    group.agents.push(value.to_ascii_lowercase());
                }
            }
            "allow" | "disallow" => {
                in_agent_lines = false;
                // Rules before any User-agent line belong to no group.
                if let Some(group) = groups.last_mut() {
                    group.rules.push(Rule {
                        allow: key == "allow",
                        pattern: value.to_owned(),
                    });
                }
            }
            _ => {}
        }
    }
    groups
}

/// Matches a robots pattern (`*` wildcards, optional trailing `$`) against a path,
/// anchored at the start.
fn pattern_matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored_end) = match pattern.strip_suffix('$') {
        Some(stripped) => (stripped, true),
        None => (pattern, false),
    };
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = path.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    for (i, piece) in pieces.iter().enumerate() {
        let last = i + 1 == pieces.len();
        if last && anchored_end {
            return rest.ends_with(piece);
        }
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    !anchored_end || rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UA: &str = "smart-album-crawler/0.1";

    #[test]
    fn the_gallery_robots_txt_forbids_private_only() {
        let robots = Robots::parse("User-agent: *\nDisallow: /private/\n", UA);
        assert!(!robots.allows("/private/animals/page/1"));
        assert!(!robots.allows("/private/photos/animals/a.jpg"));
        assert!(robots.allows("/photos/animals/a.jpg"));
        assert!(robots.allows("/privateer"));
        assert!(robots.allows("/"));
    }

    #[test]
    fn our_own_group_replaces_the_star_group() {
        let text =
            "User-agent: *\nDisallow: /\n\nUser-agent: Smart-Album-Crawler\nDisallow: /tmp\n";
        let robots = Robots::parse(text, UA);
        assert!(robots.allows("/photos/x.jpg"));
        assert!(!robots.allows("/tmp/x"));
        let other = Robots::parse(text, "some-other-bot/2");
        assert!(!other.allows("/photos/x.jpg"));
    }

    #[test]
    fn several_agents_can_share_one_group() {
        let text = "User-agent: a-bot\nUser-agent: smart-album-crawler\nDisallow: /x\nUser-agent: *\nDisallow: /\n";
        let robots = Robots::parse(text, UA);
        assert!(!robots.allows("/x/1"));
        assert!(robots.allows("/y"));
    }

    #[test]
    fn the_longest_match_wins_and_allow_wins_ties() {
        let text = "User-agent: *\nDisallow: /photos/\nAllow: /photos/public/\nAllow: /same\nDisallow: /same\n";
        let robots = Robots::parse(text, UA);
        assert!(!robots.allows("/photos/a.jpg"));
        assert!(robots.allows("/photos/public/a.jpg"));
        assert!(robots.allows("/same/x"));
    }

    #[test]
    fn wildcards_and_end_anchors_match() {
        let robots = Robots::parse(
            "User-agent: *\nDisallow: /*.gif$\nDisallow: /a*/secret\n",
            UA,
        );
        assert!(!robots.allows("/img/x.gif"));
        assert!(robots.allows("/img/x.gif?size=2"));
        assert!(!robots.allows("/abc/secret/1"));
        assert!(robots.allows("/b/secret"));
    }

    #[test]
    fn an_empty_disallow_allows_everything() {
        let robots = Robots::parse("User-agent: *\nDisallow:\n", UA);
        assert!(robots.allows("/anything"));
    }

    #[test]
    fn comments_and_unknown_lines_are_ignored() {
        let text = "# hi\nSitemap: http://127.0.0.1/s.xml\nUser-agent: * # all\nCrawl-delay: 1\nDisallow: /p # no\n";
        let robots = Robots::parse(text, UA);
        assert!(!robots.allows("/p/1"));
        assert!(robots.allows("/q"));
    }

    #[test]
    fn missing_and_unreachable_files_allow_all_and_nothing() {
        assert!(Robots::allow_all().allows("/private/x"));
        assert!(!Robots::disallow_all().allows("/"));
    }
}
