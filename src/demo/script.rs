//! What the demo agents say: who they work for, the chains they run, the tools they use.

pub struct StepPlan {
    pub title: &'static str,
    pub action: &'static str,
}

pub struct ChainPlan {
    pub title: &'static str,
    pub steps: Vec<StepPlan>,
}

/// A number below `n`, from the system's randomness (no generator state to carry).
pub fn random(n: u32) -> u32 {
    (uuid::Uuid::new_v4().as_u128() % u128::from(n.max(1))) as u32
}

const PEOPLE: [(&str, &str); 5] = [
    ("ada", "billing-api"),
    ("grace", "web-app"),
    ("linus", "data-pipeline"),
    ("margaret", "flight-software"),
    ("alan", "docs-site"),
];

pub fn person(k: usize) -> (&'static str, &'static str) {
    PEOPLE[k % PEOPLE.len()]
}

const CHAINS: [(&str, &[(&str, &str)]); 4] = [
    (
        "Fix the failing checkout test",
        &[
            ("Read the failing test", "read"),
            ("Find the cause", "analyze"),
            ("Patch the total calculation", "edit"),
            ("Run the test suite", "test"),
            ("Write the summary", "report"),
        ],
    ),
    (
        "Add rate limiting to the API",
        &[
            ("Survey the routes", "read"),
            ("Design the limiter", "plan"),
            ("Implement the middleware", "edit"),
            ("Add tests", "edit"),
            ("Run the test suite", "test"),
            ("Update the docs", "edit"),
        ],
    ),
    (
        "Upgrade the dependencies",
        &[
            ("List what is outdated", "read"),
            ("Bump the versions", "edit"),
            ("Fix the compile errors", "edit"),
            ("Run the test suite", "test"),
        ],
    ),
    (
        "Migrate the orders table",
        &[
            ("Read the schema", "read"),
            ("Write the migration", "edit"),
            ("Apply it to staging", "deploy"),
            ("Check the row counts", "test"),
            ("Write the summary", "report"),
        ],
    ),
];

/// The chains of one session: two of the four, starting at `k`.
pub fn chains(k: usize) -> Vec<ChainPlan> {
    (0..2)
        .map(|i| {
            let (title, steps) = CHAINS[(k + i) % CHAINS.len()];
            ChainPlan {
                title,
                steps: steps
                    .iter()
                    .map(|&(title, action)| StepPlan { title, action })
                    .collect(),
            }
        })
        .collect()
}

const TOOLS: [(&str, &str); 6] = [
    ("Read", "src/lib.rs"),
    ("Grep", "fn total"),
    ("Edit", "src/cart/total.rs"),
    ("Bash", "cargo test --quiet"),
    ("Read", "Cargo.toml"),
    ("Bash", "git diff --stat"),
];

pub fn tool_use(step: u64) -> (&'static str, &'static str) {
    TOOLS[(step as usize + random(3) as usize) % TOOLS.len()]
}

pub fn failure(step: u64) -> String {
    format!("step {step}: 2 of 48 tests failed (tests/checkout.rs)")
}

/// The question every session's first chain stops to ask.
pub fn question() -> (&'static str, [&'static str; 3]) {
    (
        "The plan touches 4 files. Go ahead with the edits?",
        ["Yes, go ahead", "Only the tests", "No, stop here"],
    )
}
