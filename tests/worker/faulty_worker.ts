/**
 * The real kernel worker with a fault injected at the kernel boundary, for
 * the pool's failure tests: f32 products with 1000 columns throw (as a trap
 * would), products with 1001 columns never return (a stuck thread). Every
 * other product runs the real kernels, so the pool's results stay exact.
 */
import "./inject_fault.ts";
import "../../src/worker/kernel_worker.ts";
