//! The shared wire types under the names the client uses.

pub(super) use crate::wire::{
    EventBody, Page, STATUSES, TaskEvent as EventData, TaskView as Task, is_final,
};
