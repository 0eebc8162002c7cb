//! Where a tensor's storage lives. The default build has the CPU only; the `cuda` feature (a
//! later issue) adds GPUs. A value, not a type parameter, picks the backend (DESIGN.md).

use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Device {
    #[default]
    Cpu,
    Cuda(usize),
}

impl Device {
    /// Checks that this build can place tensors on the device.
    pub fn check_available(self, op: &'static str) -> Result<()> {
        match self {
            Device::Cpu => Ok(()),
            Device::Cuda(i) => Err(Error::device(
                op,
                format!("device cuda:{i} is not available: this build of shendu has no CUDA backend (cargo feature `cuda`)"),
            )),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}
