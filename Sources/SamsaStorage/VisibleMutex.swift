#if SAMSA_TSAN
import SamsaRecords

/// TSan builds only: see `VisibleMutex`.
typealias Mutex<Value> = VisibleMutex<Value>
#endif
