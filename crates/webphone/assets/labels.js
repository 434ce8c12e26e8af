// Words for codes: issue types (dotted, set by the flows), dispositions and
// the names of lookup fields, in the agent's language (the browser's: zh*
// is Chinese, anything else English). A code without an entry still reads
// as words: `purchase.course_access` → "Purchase › Course access". The
// codes themselves stay in the records; these are only what the page shows.

const LANG = (navigator.language || 'en').toLowerCase().startsWith('zh') ? 'zh' : 'en';

// Every issue_type of ivr-flows/main.yaml, each segment on its own so a
// new sub-type of a known type still gets its parent's words.
const ISSUE_WORDS = {
  en: {
    subscription: 'Subscription',
    'subscription.renewal': 'Renewal date',
    'subscription.cancel': 'Cancellation',
    'subscription.refund': 'Refund',
    'subscription.billing': 'Billing',
    purchase: 'Purchase',
    'purchase.course_access': 'Course access',
    'purchase.order_status': 'Order status',
    'purchase.refund': 'Refund',
    'purchase.invoice': 'Invoice',
  },
  zh: {
    subscription: '订阅',
    'subscription.renewal': '续订日期',
    'subscription.cancel': '取消订阅',
    'subscription.refund': '退款',
    'subscription.billing': '账单',
    purchase: '购买',
    'purchase.course_access': '课程访问',
    'purchase.order_status': '订单状态',
    'purchase.refund': '退款',
    'purchase.invoice': '发票',
  },
};

const DISPOSITION_WORDS = {
  en: {
    resolved: 'Resolved',
    refund: 'Refund issued',
    follow_up: 'Follow-up needed',
    escalated: 'Escalated',
    no_action: 'No action needed',
  },
  zh: {
    resolved: '已解决',
    refund: '已退款',
    follow_up: '需要跟进',
    escalated: '已升级',
    no_action: '无需处理',
  },
};

const FIELD_WORDS = {
  en: { renews_on: 'Renews on', purchased_on: 'Purchased on', order_number: 'Order number', amount_cents: 'Amount (cents)' },
  zh: {
    customer: '客户', name: '姓名', plan: '套餐', status: '状态', renews_on: '续订日期', language: '语言',
    course: '课程', order_number: '订单号', amount: '金额', currency: '币种', purchased_on: '购买日期',
    subscriber: '订阅用户', order: '订单', caller: '来电号码',
  },
};

/** `follow_up` / `course-access` → "Follow up" / "Course access". */
export function humanize(code) {
  const s = String(code ?? '').replace(/[_-]+/g, ' ').trim();
  return s ? s[0].toUpperCase() + s.slice(1) : '';
}

/** An issue type as words: "Subscription › Refund". Empty for none. */
export function issueLabel(code) {
  if (!code) return '';
  const words = ISSUE_WORDS[LANG];
  const parts = String(code).split('.');
  return parts
    .map((p, i) => {
      const key = parts.slice(0, i + 1).join('.');
      return words[key] ?? humanize(p);
    })
    .join(' › ');
}

export function dispositionLabel(code) {
  return DISPOSITION_WORDS[LANG][code] ?? humanize(code);
}

export function fieldLabel(key) {
  return FIELD_WORDS[LANG][key] ?? humanize(key);
}
