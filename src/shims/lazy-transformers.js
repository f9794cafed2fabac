// Entry of dist/lazy/transformers.js: transformers.js (1.5 MB) in a bundle of its own, loaded by the CLI only
// to download a model from the Hugging Face Hub.
export * from '@huggingface/transformers';
