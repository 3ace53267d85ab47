//! Layer 2: the node's state directory — the signature cache and its entry
//! format ([`cache`]), where trust roots are kept ([`trust_names`]), the
//! pulled policy releases ([`policy_store`]) and the chain IDs of resolved
//! manifests ([`chains`]).

pub mod archive;
pub mod cache;
pub mod chains;
pub mod policy_store;
pub mod trust_names;
