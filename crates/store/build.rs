//! `sqlx::migrate!` embeds the migration files when the crate compiles; without this, a new
//! migration file alone would not rebuild the crate and binaries would run without it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
