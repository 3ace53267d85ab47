//! Layer 2: the node's state directory — the signature cache and its entry
//! format ([`cache`]), and where trust roots are kept ([`trust_names`]).

pub mod archive;
pub mod cache;
pub mod policy_store;
pub mod trust_names;
