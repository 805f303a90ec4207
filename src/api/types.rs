//! The API's wire types, under the name the API's users look for: the same module as
//! [`crate::wire`] (which sits below the jobs that publish events).

pub use crate::wire::*;
