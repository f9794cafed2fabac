// Replaces sharp in the bundles (see esbuild.js): transformers.js only checks that it is a function.
module.exports = function sharpUnavailable() {
  throw new Error('Image processing is not part of Embedding Lens.');
};
