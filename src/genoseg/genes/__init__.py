"""Gene models from per-base probabilities: stranded genes, transcripts, exons and CDS.

``predict_genes(predictions, fasta, outdir)`` (:mod:`.run`) decodes a prediction
dataset with an explicit two-strand gene structure state model (:mod:`.statemodel`)
by exact Viterbi over each gene-bearing region (:mod:`.regions`, :mod:`.viterbi`,
:mod:`.decoder`) and writes GFF3, protein FASTA and BED12 (:mod:`.writers`).
"""

from .decoder import Decoder, DecoderParams, Transcript  # noqa: F401
from .run import OUTPUTS, predict_genes  # noqa: F401
