package console

import "errors"

var errorsIs = errors.Is

// messages holds the console's words in Chinese and English. A key missing
// in one language falls back to the other, then to the key itself.
var messages = map[string]map[string]string{
	"zh": {
		"app": "环卫案件调度台", "login": "登录", "logout": "退出", "user": "用户名", "password": "密码",
		"queue": "案件队列", "fleet": "车辆设备地图", "assessment": "考核评价", "account": "我的账户", "users": "用户管理",
		"err.csrf": "请求缺少有效的防伪令牌，已拒绝", "err.login": "用户名或密码错误", "err.throttled": "登录失败次数过多，请稍后再试",
		"err.notfound": "案件不存在", "err.forbidden": "您的角色无权执行此操作", "err.conflict": "当前状态下不能执行此操作",
		"err.bad": "请求有误", "err.internal": "内部错误", "err.photo": "照片须为 JPEG、PNG 或 WebP，且不超过 8 MB",
		"filter": "筛选", "all": "全部", "state": "状态", "type": "类型", "severity": "严重程度", "district": "区",
		"unit": "责任单位", "contractor": "作业单位", "overdue": "超期", "from": "起", "to": "止", "sort": "排序",
		"sort.newest": "最新在前", "sort.oldest": "最早在前", "sort.due": "结案期限", "apply": "应用", "reset": "清除",
		"yes": "是", "no": "否", "next": "下一页", "first": "第一页", "new.cases": "条新案件", "show": "显示",
		"sound": "声音提醒", "id": "编号", "summary": "摘要", "filed": "立案时间", "due": "结案期限", "none": "没有符合条件的案件",
		"state.reported": "上报", "state.filed": "立案", "state.dispatched": "已派遣", "state.accepted": "已受理",
		"state.handled": "已处置", "state.closed": "已结案", "state.rejected": "不予立案", "state.transferred": "已移送",
		"state.deferred": "缓办",
		"act.dispatch":   "派遣", "act.accept": "受理", "act.handle": "处置反馈", "act.verify": "核查结案",
		"act.verify_fail": "核查不通过（返工）", "act.send_back": "退回", "act.transfer": "移送", "act.defer": "缓办",
		"act.reject": "不予立案", "act.reopen": "重新打开", "act.comment": "备注",
		"confirm.dispatch": "案件将派遣给所选单位，并开始受理时限。", "confirm.accept": "您的单位将受理此案件。",
		"confirm.handle": "案件将标记为已处置，等待核查。", "confirm.verify": "案件将核查通过并结案。",
		"confirm.verify_fail": "案件将退回责任单位返工，并重新计时。", "confirm.send_back": "案件将退回调度中心重新派遣。",
		"confirm.transfer": "案件将移送给所选单位。", "confirm.defer": "案件将缓办，可设定新的结案期限。",
		"confirm.reject": "案件将不予立案并关闭。", "confirm.reopen": "案件将重新打开并重新派遣。",
		"confirm.comment": "备注将记入案件历史。", "confirm": "确认", "cancel": "取消", "note": "说明", "photo": "现场照片",
		"until": "新期限", "do": "执行", "actions": "可执行操作", "history": "案件历史", "evidence": "证据",
		"map": "地图", "curve": "曲线", "deadline": "期限", "accept.due": "受理期限", "close.due": "结案期限",
		"due.left": "剩余 %s", "due.late": "已超期 %s", "device": "设备", "site": "场所", "route": "线路",
		"count": "次数", "reworks": "返工次数", "actor": "操作人", "action": "操作", "at": "时间", "done": "已完成",
		"no.actions": "您的角色在此状态下没有可执行的操作。", "online": "在线", "offline": "离线", "full": "满溢",
		"alarm": "有未结案件", "ok": "正常", "kind": "类型", "last": "最近数据", "open.cases": "未结案件",
		"period": "期间", "group": "分组", "by.unit": "按单位", "by.district": "按区", "by.both": "按单位和区",
		"closure": "结案率", "ontime": "按期结案率", "rework": "返工率", "deferral": "延期率", "due.count": "应结案数",
		"closed": "已结案", "csv": "导出 CSV", "language": "语言", "change.password": "修改密码", "old.password": "原密码",
		"new.password": "新密码（至少 10 位）", "save": "保存", "saved": "已保存", "role": "角色", "admin": "管理员",
		"add.user": "新建用户", "role.city": "市级（全部案件）", "role.district": "区级", "role.unit": "责任单位",
		"skip": "跳到正文", "facts": "案件信息", "due.work": "工作时间剩余 %s", "live": "实时", "back": "返回队列", "position": "位置", "track": "轨迹",
	},
	"en": {
		"app": "Sanitation dispatch console", "login": "Log in", "logout": "Log out", "user": "User name", "password": "Password",
		"queue": "Case queue", "fleet": "Fleet map", "assessment": "Assessment", "account": "My account", "users": "Users",
		"err.csrf": "The request has no valid anti-forgery token and was refused", "err.login": "Wrong user name or password",
		"err.throttled": "Too many failed logins; try again later", "err.notfound": "No such case",
		"err.forbidden": "Your role may not do this", "err.conflict": "This cannot be done in the case's state",
		"err.bad": "Bad request", "err.internal": "Internal error", "err.photo": "The photo must be JPEG, PNG or WebP, at most 8 MB",
		"filter": "Filter", "all": "All", "state": "State", "type": "Type", "severity": "Severity", "district": "District",
		"unit": "Unit", "contractor": "Contractor", "overdue": "Overdue", "from": "From", "to": "To", "sort": "Sort",
		"sort.newest": "Newest first", "sort.oldest": "Oldest first", "sort.due": "Close deadline", "apply": "Apply",
		"reset": "Clear", "yes": "Yes", "no": "No", "next": "Next page", "first": "First page", "new.cases": "new cases",
		"show": "Show", "sound": "Sound", "id": "No.", "summary": "Summary", "filed": "Filed", "due": "Close by",
		"none": "No case matches", "state.reported": "Reported", "state.filed": "Filed", "state.dispatched": "Dispatched",
		"state.accepted": "Accepted", "state.handled": "Handled", "state.closed": "Closed", "state.rejected": "Rejected",
		"state.transferred": "Transferred", "state.deferred": "Deferred",
		"act.dispatch": "Dispatch", "act.accept": "Accept", "act.handle": "Report handled", "act.verify": "Verify and close",
		"act.verify_fail": "Fail verification (rework)", "act.send_back": "Send back", "act.transfer": "Transfer",
		"act.defer": "Defer", "act.reject": "Reject", "act.reopen": "Reopen", "act.comment": "Comment",
		"confirm.dispatch": "The case goes to the chosen unit and its accept deadline starts.",
		"confirm.accept":   "Your unit takes the case.", "confirm.handle": "The case is marked handled and waits for verification.",
		"confirm.verify":      "The case passes verification and is closed.",
		"confirm.verify_fail": "The case goes back to the unit for rework; the deadline restarts.",
		"confirm.send_back":   "The case goes back to the dispatcher.", "confirm.transfer": "The case goes to the chosen unit.",
		"confirm.defer": "The case is deferred; you may set a new close deadline.", "confirm.reject": "The case is rejected and closed.",
		"confirm.reopen": "The case is reopened and dispatched again.", "confirm.comment": "The comment is added to the history.",
		"confirm": "Confirm", "cancel": "Cancel", "note": "Note", "photo": "Photo", "until": "New deadline", "do": "Do",
		"actions": "Actions", "history": "History", "evidence": "Evidence", "map": "Map", "curve": "Curve",
		"deadline": "Deadline", "accept.due": "Accept by", "close.due": "Close by", "due.left": "%s left",
		"due.late": "%s overdue", "device": "Device", "site": "Site", "route": "Route", "count": "Raised",
		"reworks": "Reworks", "actor": "By", "action": "Action", "at": "At", "done": "Done",
		"no.actions": "Your role can do nothing on the case in this state.", "online": "Online", "offline": "Offline",
		"full": "Full", "alarm": "Open case", "ok": "OK", "kind": "Kind", "last": "Last reading", "open.cases": "Open cases",
		"period": "Period", "group": "Group by", "by.unit": "Unit", "by.district": "District", "by.both": "Unit and district",
		"closure": "Closure rate", "ontime": "On-time closure rate", "rework": "Rework rate", "deferral": "Deferral rate",
		"due.count": "Due", "closed": "Closed", "csv": "Export CSV", "language": "Language", "change.password": "Change password",
		"old.password": "Current password", "new.password": "New password (10 characters or more)", "save": "Save",
		"saved": "Saved", "role": "Role", "admin": "Administrator", "add.user": "Add user", "role.city": "City (every case)",
		"role.district": "District", "role.unit": "Unit", "skip": "Skip to content", "facts": "Case", "due.work": "%s of working time left", "live": "Live", "back": "Back to the queue",
		"position": "Position", "track": "Track",
	},
}

func translate(lang, key string) string {
	if m, ok := messages[lang][key]; ok {
		return m
	}
	if m, ok := messages["en"][key]; ok {
		return m
	}
	return key
}

func (c *Console) tr(lang, key string) string { return translate(lang, key) }
