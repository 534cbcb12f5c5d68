//! # album-eval
//!
//! The third stage of smart-album's data flow (dataset → training → eval → serving):
//! evaluation reports, the paper's Table 1 and Table 2 redone, model comparison and
//! ablation reports with charts. Empty until that work lands; see the README's roadmap.
