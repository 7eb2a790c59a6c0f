//! When calls may be made: the rolling-window limiter (pure, fake-clock tested), the plan that
//! fits a watchlist into the budget, cron parsing, and the async gate the client waits on.

pub mod cron;
pub mod gate;
pub mod limiter;
pub mod plan;
