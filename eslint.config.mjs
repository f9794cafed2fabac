// ESLint (flat config) with typescript-eslint's recommended rules, run by `npm test` (npm run lint).
// Kept to rules that catch mistakes; style is left to the authors. A few recommended rules are relaxed
// where this code base uses a pattern on purpose (noted beside each).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // Fixture workspaces are data (files to index), not our code.
  { ignores: ['dist/**', 'node_modules/**', 'out/**', 'bench/models/**', 'test/fixtures/models/**', 'test/fixtures/sample-workspace/**', 'test/fixtures/sweep-workspace/**', '.vscode-test/**', 'shared/**', '**/*.min.js', '.cache/**'] },
  { linterOptions: { reportUnusedDisableDirectives: 'off' } },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', __dirname: 'readonly', require: 'readonly', module: 'writable', setTimeout: 'readonly', clearTimeout: 'readonly', setImmediate: 'readonly', __filename: 'readonly', fetch: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', performance: 'readonly', structuredClone: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', TextDecoder: 'readonly', TextEncoder: 'readonly', URL: 'readonly', window: 'readonly', document: 'readonly', navigator: 'readonly' },
    },
    rules: {
      // `_`-prefixed parameters and caught errors are deliberately unused.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Native and bundled modules are loaded with require() in a few places on purpose.
      '@typescript-eslint/no-require-imports': 'off',
      // `as never` / `any` appear at library boundaries whose types are incomplete.
      '@typescript-eslint/no-explicit-any': 'off',
      // Empty catch blocks are used where a failure is expected and harmless (commented at each).
      'no-empty': ['error', { allowEmptyCatch: true }],
      // Control characters in regexes are intended (binary / terminal handling).
      'no-control-regex': 'off',
    },
  },
);
