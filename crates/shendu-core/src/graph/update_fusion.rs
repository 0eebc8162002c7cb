//! Folding `var -= lr · (a · b)` into the product itself: the matrix product that computes a
//! weight's gradient adds `-lr ×` its sums straight into the variable, so the gradient never
//! gets a buffer and the update is not a pass of its own (XLA fuses SGD the same way).
//!
//! The kernels round `-lr × sums` before adding it, so the variable gets the bits of the unfused
//! `var - lr · g` as long as the sums are those of one pass over k: fused only for
//! `k <= FUSED_MAX_K` (the smallest KC block of the packed kernels; k is the batch here).
//!
//! Updates happen after every step of a run, so the fused product moves to the end of the
//! plan, where every other reader of the variable has run. It is fused only where that move
//! changes no result: nothing else reads the gradient, no fetch or other update reads the
//! variable, and no product moved to the end reads a variable another one writes.

use super::exec::{takes_small_kernel, Base, Loc, StepKind};
use super::plan::Plan;
use super::AssignMode;
use crate::Layout;

/// The longest reduction fused (the AVX2 kernel's KC block): longer ones would add each block's
/// scaled partial sums to the variable, rounding differently from the unfused update.
const FUSED_MAX_K: usize = 256;

impl Plan {
    pub(super) fn fuse_updates_into_matmuls(&mut self) {
        let candidates: Vec<(usize, usize)> =
            self.commits.iter().enumerate().filter_map(|(ci, _)| self.fusable_update(ci).map(|p| (ci, p))).collect();
        let fused_vars: Vec<Base> = candidates.iter().map(|&(ci, _)| Base::Ext(self.commits[ci].var)).collect();
        let mut moved = Vec::new();
        let mut gone = Vec::new();
        for &(ci, p) in &candidates {
            // The product reads no variable that a product moved beside it writes.
            if self.steps[p].inputs.iter().any(|l| fused_vars.contains(&l.base)) {
                continue;
            }
            let c = &self.commits[ci];
            let alpha = if c.mode == AssignMode::Sub { -c.scale } else { c.scale };
            let var_layout = Layout::contiguous(self.bases[c.var].shape().clone());
            let step = &mut self.steps[p];
            step.kind = StepKind::Matmul { bias: None, update: Some(alpha) };
            step.out = Loc { base: Base::Ext(c.var), layout: var_layout, dtype: step.out.dtype };
            step.names.push(format!("update of {}", c.name));
            moved.push(p);
            gone.push(ci);
        }
        moved.sort_unstable();
        for &p in moved.iter().rev() {
            let step = self.steps.remove(p);
            self.steps.push(step);
        }
        let mut ci = 0;
        self.commits.retain(|_| {
            ci += 1;
            !gone.contains(&(ci - 1))
        });
    }

    /// The step whose product update `ci` can absorb, if it meets the conditions above.
    fn fusable_update(&self, ci: usize) -> Option<usize> {
        let c = &self.commits[ci];
        if c.mode == AssignMode::Set {
            return None;
        }
        let Base::Val(r) = c.value.base else { return None };
        let p = self.steps.iter().position(|s| s.out_val == r && s.out.base == Base::Val(r))?;
        let s = &self.steps[p];
        let StepKind::Matmul { bias: None, update: None } = s.kind else { return None };
        let var = &self.bases[c.var];
        let (a, b) = (&s.inputs[0].layout, &s.inputs[1].layout);
        let fits = s.epi.is_empty()
            && c.value.layout == s.out.layout
            && var.dtype() == s.out.dtype
            && var.is_contiguous()
            && var.layout().offset() == 0
            && var.shape() == s.out.layout.shape()
            // Small products keep their own kernel (it has no scaled form).
            && !takes_small_kernel(a.dims()[0], b.dims()[1], a.dims()[1], b)
            && a.dims()[1] <= FUSED_MAX_K;
        let gradient_read_elsewhere = self.steps.iter().any(|st| st.inputs.iter().any(|l| l.base == Base::Val(r)))
            || self.fetch.iter().flatten().any(|l| l.base == Base::Val(r))
            || self.commits.iter().enumerate().any(|(j, o)| j != ci && o.value.base == Base::Val(r));
        let vb = Base::Ext(c.var);
        let var_read_elsewhere = s.inputs.iter().any(|l| l.base == vb)
            || self.fetch.iter().flatten().any(|l| l.base == vb)
            || self.commits.iter().enumerate().any(|(j, o)| j != ci && (o.var == c.var || o.value.base == vb));
        (fits && !gradient_read_elsewhere && !var_read_elsewhere).then_some(p)
    }
}
