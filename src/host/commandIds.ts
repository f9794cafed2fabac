// Command ids, as declared in package.json `contributes.commands` (an integration test checks that
// the two lists agree and that every id is registered).
export const COMMANDS = {
  indexWorkspace: 'embeddingLens.indexWorkspace',
  searchWorkspace: 'embeddingLens.searchWorkspace',
  findSimilar: 'embeddingLens.findSimilar',
  inspectSelection: 'embeddingLens.inspectSelection',
  extractSelection: 'embeddingLens.extractSelection',
  extractFile: 'embeddingLens.extractFile',
  extractWorkspace: 'embeddingLens.extractWorkspace',
  chooseModel: 'embeddingLens.chooseModel',
  chooseRecipe: 'embeddingLens.chooseRecipe',
  rebuildIndex: 'embeddingLens.rebuildIndex',
  clearIndex: 'embeddingLens.clearIndex',
  showLog: 'embeddingLens.showLog',
  findBestLayer: 'embeddingLens.findBestLayer',
  setPostgresPassword: 'embeddingLens.setPostgresPassword',
} as const;
export type CommandId = (typeof COMMANDS)[keyof typeof COMMANDS];
