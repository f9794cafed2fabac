// Entry of dist/lazy/h5wasm.js: h5wasm (5.8 MB, its WebAssembly inlined) in a bundle of its own, so the CLI's
// bundle does not compile it at every start; loaded by the CLI only when an .h5 file is read or written.
export * from 'h5wasm/node';
export { default } from 'h5wasm/node';
