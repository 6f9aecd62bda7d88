// Kernels of this file are being written; see src/kernels/exports.ts for the contract.
