//! Layer 2: the node's state directory — the signature cache and its entry
//! format ([`cache`]), where trust roots are kept ([`trust_names`]), and the
//! pulled policy releases ([`policy_store`]).

pub mod archive;
pub mod cache;
pub mod policy_store;
pub mod trust_names;
