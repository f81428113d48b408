"""Keys of the records that travel between ServerApp and ClientApp.

Both sides import these names, so a renamed key breaks loudly at import
rather than silently at run time.
"""

# RecordDict entries
ARRAYS = "arrays"
CONFIG = "config"
METRICS = "metrics"
COMPRESSION = "compression"  # ConfigRecord naming the codec of a compressed ArrayRecord
SECAGG = "secagg"  # ConfigRecord of the secure-aggregation protocol (aureon.secagg)
SECAGG_MASKED = "secagg-masked"  # ArrayRecord holding a client's masked input
SECAGG_NEXT = "secagg-next"  # next round's public keys, advertised with a masked-input reply
SECAGG_SETUP_RECORD = "secagg-setup"  # stage-0 parameters for keys advertised ahead
SECAGG_SHARE_KEYS_RECORD = "secagg-share-keys"  # next round's stage-2 request, with an unmask request
SECAGG_SHARES_RECORD = "secagg-shares"  # next round's stage-2 reply, with an unmask reply

# ConfigRecord keys sent by the server (what AUREON's client honours: aureon/federated/train_request.py)
SERVER_ROUND = "server-round"
PROXIMAL_MU = "proximal-mu"  # set by Flower's FedProx
NUM_ROUNDS = "num-rounds"  # rounds the client's DP plan spreads its target epsilon over
LR = "lr"  # this round's learning rate (Flower's customary train config)
LOCAL_EPOCHS = "local-epochs"  # this round's local epochs (Flower's customary train config)

# ConfigRecord keys describing a compressed ArrayRecord (either direction)
CODEC = "codec"
PAYLOAD_KIND = "payload"  # "weights" (server to client) or "delta" (client to server)

# MetricRecord keys sent back by clients (Flower's hyphenated names). A reply is identified by
# its message's source node (``msg.metadata.src_node_id``), never by a metric.
NUM_EXAMPLES = "num-examples"
TRAIN_LOSS = "train-loss"
EPSILON = "epsilon"
EVAL_LOSS = "eval-loss"
EVAL_ACCURACY = "eval-accuracy"

# ConfigRecord a client may add to its train reply: a label for people reading results.json
# (AUREON's client names its partition), never its identity, which is the source node
CLIENT_LABEL = "aureon-client"
LABEL_PARTITION_ID = "partition-id"

# Node config keys provided by Flower (simulation and SuperNode)
NODE_PARTITION_ID = "partition-id"
NODE_NUM_PARTITIONS = "num-partitions"

# Client state (context.state) entries
STATE_PRIVACY = "aureon.privacy"
STATE_ACCOUNTANT = "accountant"
STATE_RESIDUAL = "aureon.compression.residual"  # top-k error feedback (ArrayRecord)
STATE_SECAGG = "aureon.secagg"  # this round's secure-aggregation secrets (ConfigRecord)
# the last secure-aggregation setup accepted (round, seed commitment): no secrets, must
# outlive the process and never move back, so a restarted client refuses a second setup
STATE_SECAGG_PROGRESS = "aureon.secagg.progress"
# the same two for the secure sums of tabular statistics (their own rounds, apart from training's)
STATE_SECAGG_TABULAR = "aureon.secagg.tabular"
STATE_SECAGG_TABULAR_PROGRESS = "aureon.secagg.tabular.progress"

# run_config key that carries Hydra overrides for `flwr run .`
RUN_CONFIG_OVERRIDES = "overrides"

# Message types of the secure-aggregation stages (Flower's "<category>.<action>")
SECAGG_SETUP = "query.secagg_setup"  # stages 0-1: parameters in, public keys out
SECAGG_SHARE_KEYS = "query.secagg_share_keys"  # stage 2: encrypted Shamir shares
SECAGG_TRAIN = "train.secagg"  # stage 3: train, then reply with the masked update
SECAGG_UNMASK = "query.secagg_unmask"  # stage 4: shares that remove the masks

# Message types of the federated statistics of tables (aureon.features.tabular.messages)
TABULAR_STATISTICS = "query.tabular_statistics"  # aggregates of a client's rows, never the rows
TABULAR_SCORES = "query.tabular_scores"  # a client's scores of candidate features on its rows
TABULAR_SCHEMA = "query.tabular_schema"  # a client's own table: its columns, task and class names
TABULAR_PIPELINE = "query.tabular_pipeline"  # the run's fitted pipeline, kept by each client for the run
TABULAR = "tabular"  # ConfigRecord of a tabular statistics query or answer
TABULAR_ARRAYS = "tabular-arrays"  # ArrayRecord of a tabular statistics query or answer
# statistics summed under secure aggregation (aureon.features.tabular.secure_messages)
TABULAR_SECURE_SETUP = "query.tabular_secure_setup"  # stages 0-1
TABULAR_SECURE_SHARE_KEYS = "query.tabular_secure_share_keys"  # stage 2
TABULAR_SECURE_MASKED = "query.tabular_secure_masked"  # stage 3: the masked statistics vector
TABULAR_SECURE_UNMASK = "query.tabular_secure_unmask"  # stage 4
TABULAR_NAMES = "query.tabular_names"  # a client's category names in the buckets the server names

# Deployment: node config entries set by `python -m clients`, and the run's identity
NODE_STATE_DIR = "state-dir"  # where a client persists state that must survive a restart
NODE_OVERRIDES = "overrides"  # the client's own Hydra overrides (its data path, ...)
# The client's privacy floor (set by its operator, never by the server; see aureon.privacy.floor)
NODE_REQUIRE_DP = "aureon-require-dp"
NODE_MAX_EPSILON = "aureon-max-epsilon"
NODE_MAX_DELTA = "aureon-max-delta"
NODE_DEPLOYMENT = "aureon-deployment"  # a real client process: reproducible noise is refused
RUN_KEY = "aureon-run-key"  # train ConfigRecord: one experiment's id, kept across a server resume
RUN_CONFIG_RUN_DIR = "run-dir"
