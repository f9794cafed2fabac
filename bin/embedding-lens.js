#!/usr/bin/env node
// Thin launcher: the CLI is bundled by esbuild.js into dist/cli.js.
require('../dist/cli.js');
