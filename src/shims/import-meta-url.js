// Injected by esbuild.js: `import.meta.url` in bundled ESM dependencies becomes this file URL.
export const import_meta_url = require('url').pathToFileURL(__filename).href;
